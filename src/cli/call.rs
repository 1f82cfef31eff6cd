//! `coda call`: placeholder until the UA lands.
use clap::Args;

#[derive(Args, Debug)]
pub struct CallArgs {
    /// SIP URI to dial.
    pub uri: String,
}

pub fn run(_args: CallArgs) -> Result<(), super::CliError> {
    Err("coda call is not built yet".into())
}
