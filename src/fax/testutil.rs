//! Test support: render fax PDFs back to bitmaps with hayro (pure Rust), so tests compare
//! what a reader of the mailed PDF sees with the pages that were sent.

use hayro::hayro_interpret::util::TransformExt;
use hayro::hayro_interpret::InterpreterSettings;
use hayro::hayro_syntax::Pdf as ParsedPdf;
use hayro::kurbo::Affine;
use hayro::vello_cpu::color::palette::css::WHITE;
use hayro::vello_cpu::{Pixmap, RasterizerSettings, RenderContext, Resources, TargetInit};
use hayro::{render_into, RenderCache, RenderSettings};

use super::pdf::{pages_to_pdf, PdfMeta};
use super::tiff::{Bitmap, FaxPage};

/// hayro resamples an image (Hermite filter) whenever device pixels per image pixel come
/// out below 1.0 in f32, and 1728 px / 204 dpi * 72 pt * 204/72 lands at 0.99999994: the
/// resampled picture then has ~0.1 % of pixels shifted near the middle. Enlarging the render
/// scale by 1e-6 (0.002 px across a page) keeps hayro on its 1:1 path. The PDF is unaffected.
const SCALE_NUDGE: f64 = 1.000_001;

/// Render every page of `pdf` with hayro so that one image pixel is one device pixel
/// (scale = dpi / 72, aliasing off) and threshold at 50 % grey. `sizes` gives each page's
/// pixel size and resolution; the media box must match it.
pub fn render(pdf: &[u8], sizes: &[(u32, u32, f32, f32)]) -> Vec<Bitmap> {
    let parsed = ParsedPdf::new(pdf.to_vec()).expect("hayro parses our PDF");
    let pages = parsed.pages();
    assert_eq!(pages.len(), sizes.len());
    let cache = RenderCache::new();
    let settings = InterpreterSettings::default();
    let render_settings = RenderSettings {
        aliasing_threshold: Some(128),
        ..Default::default()
    };
    let mut out = Vec::new();
    for (page, &(w, h, xdpi, ydpi)) in pages.iter().zip(sizes) {
        let (sx, sy) = (
            f64::from(xdpi) / 72.0 * SCALE_NUDGE,
            f64::from(ydpi) / 72.0 * SCALE_NUDGE,
        );
        let (pw, ph) = page.render_dimensions();
        assert!(
            (f64::from(pw) * sx - f64::from(w)).abs() < 0.01,
            "width {pw} pt"
        );
        assert!(
            (f64::from(ph) * sy - f64::from(h)).abs() < 0.01,
            "height {ph} pt"
        );
        let mut ctx = RenderContext::new(w as u16, h as u16);
        let transform = Affine::scale_non_uniform(sx, sy) * page.initial_transform(true).to_kurbo();
        render_into(
            page,
            &cache,
            &settings,
            &render_settings,
            &mut ctx,
            transform,
        );
        ctx.flush();
        let mut pixmap = Pixmap::new(w as u16, h as u16);
        ctx.render_with(
            &mut pixmap,
            &mut Resources::default(),
            RasterizerSettings {
                target_init: TargetInit::Clear(WHITE),
                ..Default::default()
            },
        );
        let mut b = Bitmap::new(w, h, xdpi as u16, ydpi as u16);
        for (i, px) in pixmap.data().iter().enumerate() {
            let (x, y) = ((i as u32) % w, (i as u32) / w);
            b.set(x, y, px.r < 128);
        }
        out.push(b);
    }
    out
}

/// One received page, through a one-page PDF, back to a bitmap.
pub fn decode_page(page: &FaxPage) -> Option<Bitmap> {
    let pdf = pages_to_pdf(std::slice::from_ref(page), &PdfMeta::default()).ok()?;
    render(&pdf, &[(page.width, page.height, page.x_dpi, page.y_dpi)])
        .into_iter()
        .next()
}
