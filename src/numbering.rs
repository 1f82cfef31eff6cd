//! The numbering plan: turns what a PBX puts in From/Diversion into a normalised number and the
//! forms people read and hear. Defaults are the university's: five-digit extensions, `7xxxx` is
//! +44 1865 27xxxx and `1xxxx` is +44 1865 61xxxx; no `9` for an outside line.

use serde::Deserialize;

/// A configurable numbering plan.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NumberingPlan {
    /// Country calling code without `+`.
    pub country_code: String,
    /// Trunk prefix for national numbers.
    pub trunk_prefix: String,
    /// International access prefix.
    pub international_prefix: String,
    /// Area code without the trunk prefix.
    pub area_code: String,
    /// Length of an internal extension.
    pub extension_length: usize,
    /// How extensions map to the local number: first digit -> digits put in front.
    pub ranges: Vec<ExtensionRange>,
}

/// One block of extensions.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtensionRange {
    /// Leading digits of the extension (e.g. "7").
    pub starts_with: String,
    /// Digits put before the extension to form the local subscriber number (e.g. "2").
    pub local_prefix: String,
}

impl Default for NumberingPlan {
    fn default() -> Self {
        Self {
            country_code: "44".into(),
            trunk_prefix: "0".into(),
            international_prefix: "00".into(),
            area_code: "1865".into(),
            extension_length: 5,
            ranges: vec![
                ExtensionRange {
                    starts_with: "7".into(),
                    local_prefix: "2".into(),
                },
                ExtensionRange {
                    starts_with: "1".into(),
                    local_prefix: "6".into(),
                },
            ],
        }
    }
}

/// A caller as coda understands it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// An internal extension with, where the plan knows it, its E.164 form.
    Extension {
        extension: String,
        e164: Option<String>,
    },
    /// An outside number in E.164 (`+...`).
    External { e164: String },
    /// Something that is not a number (a SIP user name); kept as given.
    Other(String),
    /// Withheld or absent.
    Unknown,
}

impl NumberingPlan {
    /// Normalises a caller id (the user part of From or P-Asserted-Identity, or a tel: number).
    pub fn classify(&self, raw: &str) -> Caller {
        let s: String = raw
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
            .collect();
        let lower = s.to_ascii_lowercase();
        if s.is_empty() || matches!(lower.as_str(), "anonymous" | "unknown" | "restricted") {
            return Caller::Unknown;
        }
        let digits_only = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
        if let Some(rest) = s.strip_prefix('+') {
            if digits_only(rest) {
                return self.classify_e164(format!("+{rest}"));
            }
            return Caller::Other(raw.to_owned());
        }
        if !digits_only(&s) {
            return Caller::Other(raw.to_owned());
        }
        if s.len() == self.extension_length {
            return Caller::Extension {
                e164: self.extension_e164(&s),
                extension: s,
            };
        }
        if !self.international_prefix.is_empty() {
            if let Some(rest) = s.strip_prefix(&self.international_prefix) {
                if !rest.is_empty() {
                    return self.classify_e164(format!("+{rest}"));
                }
            }
        }
        if !self.trunk_prefix.is_empty() {
            if let Some(rest) = s.strip_prefix(&self.trunk_prefix) {
                if !rest.is_empty() {
                    return self.classify_e164(format!("+{}{rest}", self.country_code));
                }
            }
        }
        Caller::Other(raw.to_owned())
    }

    /// E.164 of an internal extension, if a range covers it.
    pub fn extension_e164(&self, ext: &str) -> Option<String> {
        let r = self
            .ranges
            .iter()
            .find(|r| ext.starts_with(&r.starts_with))?;
        Some(format!(
            "+{}{}{}{}",
            self.country_code, self.area_code, r.local_prefix, ext
        ))
    }

    /// An E.164 number that falls in one of our ranges is recognised as the extension.
    fn classify_e164(&self, e164: String) -> Caller {
        let local = format!("+{}{}", self.country_code, self.area_code);
        if let Some(sub) = e164.strip_prefix(&local) {
            for r in &self.ranges {
                if let Some(ext) = sub.strip_prefix(&r.local_prefix) {
                    if ext.len() == self.extension_length && ext.starts_with(&r.starts_with) {
                        return Caller::Extension {
                            extension: ext.to_owned(),
                            e164: Some(e164),
                        };
                    }
                }
            }
        }
        Caller::External { e164 }
    }

    /// National written form, e.g. `01865 277513`; international numbers keep `+`.
    pub fn national(&self, e164: &str) -> String {
        let cc = format!("+{}", self.country_code);
        match e164.strip_prefix(&cc) {
            Some(rest) if rest.starts_with(&self.area_code) => {
                let sub = &rest[self.area_code.len()..];
                format!("{}{} {}", self.trunk_prefix, self.area_code, sub)
            }
            Some(rest) => format!("{}{}", self.trunk_prefix, rest),
            None => e164.to_owned(),
        }
    }

    /// What a mail shows for a caller: national number, plus the extension for internal callers.
    pub fn display(&self, caller: &Caller) -> String {
        match caller {
            Caller::Extension {
                extension,
                e164: Some(e),
            } => format!("{} (extension {extension})", self.national(e)),
            Caller::Extension {
                extension,
                e164: None,
            } => format!("extension {extension}"),
            Caller::External { e164 } => self.national(e164),
            Caller::Other(s) => s.clone(),
            Caller::Unknown => "an unknown caller".into(),
        }
    }
}

impl Caller {
    /// The normalised form stored with a message: E.164, or the extension, or the raw text.
    pub fn stored(&self) -> String {
        match self {
            Caller::Extension { e164: Some(e), .. } => e.clone(),
            Caller::Extension {
                extension,
                e164: None,
            } => extension.clone(),
            Caller::External { e164 } => e164.clone(),
            Caller::Other(s) => s.clone(),
            Caller::Unknown => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_7xxxx_is_01865_27xxxx() {
        let p = NumberingPlan::default();
        let c = p.classify("77513");
        assert_eq!(
            c,
            Caller::Extension {
                extension: "77513".into(),
                e164: Some("+441865277513".into())
            }
        );
        assert_eq!(p.display(&c), "01865 277513 (extension 77513)");
    }

    #[test]
    fn seed_1xxxx_is_01865_61xxxx() {
        let p = NumberingPlan::default();
        assert_eq!(p.extension_e164("12345").as_deref(), Some("+441865612345"));
    }

    #[test]
    fn national_and_international_forms_normalise() {
        let p = NumberingPlan::default();
        assert_eq!(
            p.classify("01865277513"),
            Caller::Extension {
                extension: "77513".into(),
                e164: Some("+441865277513".into())
            }
        );
        assert_eq!(
            p.classify("+44 20 7946 0000"),
            Caller::External {
                e164: "+442079460000".into()
            }
        );
        assert_eq!(
            p.classify("0033142685300"),
            Caller::External {
                e164: "+33142685300".into()
            }
        );
        assert_eq!(p.national("+442079460000"), "02079460000");
        assert_eq!(p.national("+441865123456"), "01865 123456");
        assert_eq!(p.national("+33142685300"), "+33142685300");
    }

    #[test]
    fn withheld_and_names() {
        let p = NumberingPlan::default();
        assert_eq!(p.classify("anonymous"), Caller::Unknown);
        assert_eq!(p.classify(""), Caller::Unknown);
        assert_eq!(p.classify("alice"), Caller::Other("alice".into()));
        assert_eq!(p.display(&Caller::Unknown), "an unknown caller");
    }
}
