//! Fax pages → PDF, without re-encoding.
//!
//! Each strip of a [`FaxPage`] becomes one 1-bit DeviceGray image XObject, stacked top to
//! bottom on a page of `width / x_dpi` × `height / y_dpi` inches (so 204×98 dpi keeps its
//! aspect):
//! * T.6 (G4) strips: `/CCITTFaxDecode` with `/K -1`;
//! * T.4 (G3) strips: `/K 0` (1-D) or `/K 4` (2-D, the tag bit of each line decides),
//!   `/EndOfLine true` (TIFF G3 strips start every line with an EOL) and
//!   `/EncodedByteAlign` set from the fill-bits option;
//! * uncompressed strips: raw bits.
//!
//! CCITT "white" runs are white (`/BlackIs1 false`); `/Decode [1 0]` is added where the TIFF
//! photometric interpretation inverts that (CCITT with BlackIsZero, or uncompressed
//! WhiteIsZero data where 1 = black). `/EndOfBlock false` + `/Rows` lets decoders stop after
//! the strip's rows, as TIFF strips need not end with RTC/EOFB.

use pdf_writer::{Content, Filter, Finish, Name, Pdf, Rect, Ref, Str, TextStr};
use thiserror::Error;

use super::tiff::{
    Compression, FaxPage, Photometric, MAX_HEIGHT, MAX_WIDTH, T4_OPTION_2D, T4_OPTION_FILL_BITS,
};

/// Document information written into the PDF's Info dictionary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PdfMeta {
    /// `/Title`, e.g. "Fax from +49 30 1234567".
    pub title: String,
    /// `/Producer`.
    pub producer: String,
    /// `/CreationDate` as a PDF date string, e.g. `D:20250314093000Z` or
    /// `D:20250314093000+01'00'` (PDF 32000-1 §7.9.4). `None` leaves it out.
    pub creation_date: Option<String>,
}

impl Default for PdfMeta {
    fn default() -> Self {
        PdfMeta {
            title: String::new(),
            producer: "coda".into(),
            creation_date: None,
        }
    }
}

/// Why a PDF could not be built.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PdfError {
    /// No pages given.
    #[error("no pages to convert")]
    NoPages,
    /// Width, height or resolution out of range (page numbers count from 1).
    #[error("page {page}: invalid size {width}x{height} or resolution")]
    BadPage {
        /// 1-based page number.
        page: usize,
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
    /// Strips are empty, overlap, leave gaps, or do not end at the last row.
    #[error("page {page}: strips do not cover rows 0..height exactly")]
    StripLayout {
        /// 1-based page number.
        page: usize,
    },
    /// An uncompressed strip holds fewer bytes than its rows need.
    #[error("page {page}: strip {strip} holds {len} bytes, {needed} needed")]
    ShortStrip {
        /// 1-based page number.
        page: usize,
        /// 0-based strip index.
        strip: usize,
        /// Bytes present.
        len: usize,
        /// Bytes needed.
        needed: usize,
    },
    /// `creation_date` is not a PDF date string.
    #[error("creation date {0:?} is not a PDF date string (D:YYYYMMDDHHmmSS...)")]
    BadDate(String),
}

/// PDF points per inch.
const PT_PER_INCH: f32 = 72.0;

/// Build a PDF with one page per [`FaxPage`], embedding the strips as they are.
pub fn pages_to_pdf(pages: &[FaxPage], meta: &PdfMeta) -> Result<Vec<u8>, PdfError> {
    if pages.is_empty() {
        return Err(PdfError::NoPages);
    }
    if let Some(d) = &meta.creation_date {
        if !is_pdf_date(d) {
            return Err(PdfError::BadDate(d.clone()));
        }
    }
    for (i, p) in pages.iter().enumerate() {
        validate(i + 1, p)?;
    }

    let mut next = 1;
    let mut alloc = || {
        let r = Ref::new(next);
        next += 1;
        r
    };
    let catalog_id = alloc();
    let tree_id = alloc();
    let info_id = alloc();
    struct Ids {
        page: Ref,
        content: Ref,
        images: Vec<Ref>,
    }
    let ids: Vec<Ids> = pages
        .iter()
        .map(|p| Ids {
            page: alloc(),
            content: alloc(),
            images: p.strips.iter().map(|_| alloc()).collect(),
        })
        .collect();

    let mut pdf = Pdf::new();
    pdf.catalog(catalog_id).pages(tree_id);
    pdf.pages(tree_id)
        .kids(ids.iter().map(|i| i.page))
        .count(i32::try_from(ids.len()).unwrap_or(i32::MAX));
    {
        let mut info = pdf.document_info(info_id);
        if !meta.title.is_empty() {
            info.title(TextStr(&meta.title));
        }
        info.producer(TextStr(&meta.producer));
        if let Some(d) = &meta.creation_date {
            info.pair(Name(b"CreationDate"), Str(d.as_bytes()));
        }
        info.finish();
    }

    for (p, id) in pages.iter().zip(&ids) {
        let w_pt = p.width as f32 / p.x_dpi * PT_PER_INCH;
        let h_pt = p.height as f32 / p.y_dpi * PT_PER_INCH;
        let mut content = Content::new();
        let names: Vec<String> = (0..p.strips.len()).map(|i| format!("Im{i}")).collect();
        for (strip, name) in p.strips.iter().zip(&names) {
            let strip_h = strip.rows as f32 / p.y_dpi * PT_PER_INCH;
            // Rows below this strip, measured from the page bottom.
            let below = (p.height - strip.first_row - strip.rows) as f32 / p.y_dpi * PT_PER_INCH;
            content
                .save_state()
                .transform([w_pt, 0.0, 0.0, strip_h, 0.0, below])
                .x_object(Name(name.as_bytes()))
                .restore_state();
        }
        pdf.stream(id.content, &content.finish().into_vec());

        {
            let mut page = pdf.page(id.page);
            page.parent(tree_id)
                .media_box(Rect::new(0.0, 0.0, w_pt, h_pt))
                .contents(id.content);
            let mut resources = page.resources();
            let mut xobjects = resources.x_objects();
            for (name, img) in names.iter().zip(&id.images) {
                xobjects.pair(Name(name.as_bytes()), *img);
            }
        }

        for (strip, img_id) in p.strips.iter().zip(&id.images) {
            let width = to_i32(p.width);
            let rows = to_i32(strip.rows);
            let (data, invert) = match p.compression {
                Compression::None => {
                    let needed = p.stride() * strip.rows as usize;
                    (
                        strip.data.get(..needed).unwrap_or(&strip.data),
                        p.photometric == Photometric::WhiteIsZero,
                    )
                }
                _ => (
                    strip.data.as_slice(),
                    p.photometric == Photometric::BlackIsZero,
                ),
            };
            let mut image = pdf.image_xobject(*img_id, data);
            image
                .width(width)
                .height(rows)
                .color_space_name(Name(b"DeviceGray"))
                .bits_per_component(1);
            if invert {
                image.decode([1.0, 0.0]);
            }
            match p.compression {
                Compression::None => {}
                Compression::G4 => {
                    image.filter(Filter::CcittFaxDecode);
                    image
                        .decode_parms()
                        .k(-1)
                        .columns(width)
                        .rows(rows)
                        .black_is_1(false);
                }
                Compression::G3 => {
                    // K > 0: each line's tag bit says 1-D or 2-D; the value only bounds runs of
                    // 2-D lines, which decoders do not enforce. 4 is T.4's value for fine mode.
                    let k = if p.t4_options & T4_OPTION_2D != 0 {
                        4
                    } else {
                        0
                    };
                    image.filter(Filter::CcittFaxDecode);
                    image
                        .decode_parms()
                        .k(k)
                        .columns(width)
                        .rows(rows)
                        .end_of_line(true)
                        .encoded_byte_align(p.t4_options & T4_OPTION_FILL_BITS != 0)
                        .end_of_block(false)
                        .black_is_1(false);
                }
            }
        }
    }

    Ok(pdf.finish())
}

fn to_i32(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

/// Check a page before writing anything (its fields are public, so it may not come from
/// [`super::tiff::read_pages`]).
fn validate(page: usize, p: &FaxPage) -> Result<(), PdfError> {
    let dpi_ok = |d: f32| d.is_finite() && (1.0..=10_000.0).contains(&d);
    if p.width == 0
        || p.height == 0
        || p.width > MAX_WIDTH
        || p.height > MAX_HEIGHT
        || !dpi_ok(p.x_dpi)
        || !dpi_ok(p.y_dpi)
    {
        return Err(PdfError::BadPage {
            page,
            width: p.width,
            height: p.height,
        });
    }
    let mut row = 0u32;
    for (i, s) in p.strips.iter().enumerate() {
        if s.first_row != row || s.rows == 0 || s.data.is_empty() {
            return Err(PdfError::StripLayout { page });
        }
        row = row
            .checked_add(s.rows)
            .filter(|&r| r <= p.height)
            .ok_or(PdfError::StripLayout { page })?;
        if p.compression == Compression::None {
            let needed = p.stride() * s.rows as usize;
            if s.data.len() < needed {
                return Err(PdfError::ShortStrip {
                    page,
                    strip: i,
                    len: s.data.len(),
                    needed,
                });
            }
        }
    }
    if row != p.height {
        return Err(PdfError::StripLayout { page });
    }
    Ok(())
}

/// `D:YYYY` followed by optional `MMDDHHmmSS` digits and an optional `Z`, `+HH'mm'` or
/// `-HH'mm'` offset (PDF 32000-1 §7.9.4), checked loosely: digits, `Z`, `+`, `-` and `'` only.
fn is_pdf_date(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("D:") else {
        return false;
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let tail = &rest[digits..];
    (4..=14).contains(&digits)
        && digits.is_multiple_of(2)
        && tail.len() <= 7
        && tail
            .bytes()
            .all(|c| c.is_ascii_digit() || matches!(c, b'Z' | b'+' | b'-' | b'\''))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fax::testutil::render;
    use crate::fax::tiff::charts::{dense_chart, nearly_blank, numbered_page};
    use crate::fax::tiff::tests::{fixture, fixture_sources};
    use crate::fax::tiff::{read_pages, write_bilevel_uncompressed, Bitmap, Strip};
    use hayro::hayro_syntax::Pdf as ParsedPdf;

    fn meta() -> PdfMeta {
        PdfMeta {
            title: "Fax from +49 30 1234567".into(),
            producer: "coda".into(),
            creation_date: Some("D:20250314093000Z".into()),
        }
    }

    fn sizes(pages: &[FaxPage]) -> Vec<(u32, u32, f32, f32)> {
        pages
            .iter()
            .map(|p| (p.width, p.height, p.x_dpi, p.y_dpi))
            .collect()
    }

    /// Convert `pages` to PDF, render, and require every pixel to equal `expected`.
    fn assert_renders_as(pages: &[FaxPage], expected: &[Bitmap]) {
        let pdf = pages_to_pdf(pages, &meta()).unwrap();
        let rendered = render(&pdf, &sizes(pages));
        for (i, (got, want)) in rendered.iter().zip(expected).enumerate() {
            assert!(
                want.count_black() > 0,
                "page {i}: test page must not be blank"
            );
            assert_eq!(got.mismatches(want), Some(0), "page {}", i + 1);
        }
    }

    #[test]
    fn pdf_uncompressed_pages_render_pixel_exact() {
        let src = vec![
            dense_chart(1728, 500, 204, 98, 21),
            nearly_blank(1728, 400, 204, 196, 22),
            numbered_page(3, 1728, 600, 204, 391),
            dense_chart(2432, 300, 300, 300, 23),
        ];
        let pages = read_pages(&write_bilevel_uncompressed(&src)).unwrap();
        assert_renders_as(&pages, &src);
    }

    #[test]
    fn pdf_uncompressed_black_is_zero_and_multi_strip_render_pixel_exact() {
        let want = dense_chart(203, 70, 200, 100, 24);
        let stride = want.stride();
        let strips = want
            .rows
            .chunks(16 * stride)
            .enumerate()
            .map(|(i, c)| Strip {
                first_row: 16 * i as u32,
                rows: (c.len() / stride) as u32,
                data: c.iter().map(|b| !b).collect(),
            })
            .collect();
        let page = FaxPage {
            width: 203,
            height: 70,
            x_dpi: 200.0,
            y_dpi: 100.0,
            resolution_from_file: true,
            compression: Compression::None,
            t4_options: 0,
            t6_options: 0,
            photometric: Photometric::BlackIsZero,
            fill_order_lsb: false,
            rows_per_strip: 16,
            strips,
            page_number: None,
        };
        assert_renders_as(&[page], &[want]);
    }

    /// Pages compressed by libtiff (`tiffcp`, see fixtures/fax/regen.sh) render exactly as the
    /// charts they were made from; `name` picks the file, `source` the chart set.
    fn assert_fixture_renders(name: &str, source: &str) {
        let pages = read_pages(&fixture(name)).unwrap();
        let want = fixture_sources()
            .into_iter()
            .find(|(stem, _)| *stem == source)
            .map(|(_, p)| p)
            .unwrap();
        assert_eq!(pages.len(), want.len());
        assert_renders_as(&pages, &want);
    }

    #[test]
    fn t6_fill_order_2_two_pages_embedded_and_render_pixel_exact() {
        assert_fixture_renders("g4_lsb_2page.tif", "two_pages_98");
    }

    #[test]
    fn t6_big_endian_five_strips_render_pixel_exact() {
        assert_fixture_renders("g4_mm_strips.tif", "fine_196");
    }

    #[test]
    fn t4_2d_fill_bits_fill_order_2_render_pixel_exact() {
        assert_fixture_renders("g3_2d_fill_lsb.tif", "fine_196");
    }

    #[test]
    fn t4_1d_render_pixel_exact() {
        assert_fixture_renders("g3_1d.tif", "two_pages_98");
    }

    #[test]
    fn t6_strips_are_embedded_verbatim() {
        let pages = read_pages(&fixture("g4_lsb_2page.tif")).unwrap();
        let pdf = pages_to_pdf(&pages, &meta()).unwrap();
        for p in &pages {
            let data = &p.strips[0].data;
            assert!(pdf.windows(data.len()).any(|w| w == data.as_slice()));
        }
        let text = String::from_utf8_lossy(&pdf);
        assert_eq!(text.matches("/CCITTFaxDecode").count(), 2);
        assert!(text.contains("/K -1"));
        assert!(text.contains("/BlackIs1 false"));
    }

    /// MSB-first bit string builder for hand-coded T.6 data.
    struct Bits(Vec<u8>, u32);

    impl Bits {
        fn new() -> Self {
            Bits(Vec::new(), 0)
        }

        fn put(&mut self, code: &str) -> &mut Self {
            for c in code.bytes() {
                if self.1.is_multiple_of(8) {
                    self.0.push(0);
                }
                if c == b'1' {
                    let last = self.0.len() - 1;
                    self.0[last] |= 0x80 >> (self.1 % 8);
                }
                self.1 += 1;
            }
            self
        }
    }

    fn g4_page(width: u32, height: u32, data: Vec<u8>) -> FaxPage {
        FaxPage {
            width,
            height,
            x_dpi: 204.0,
            y_dpi: 98.0,
            resolution_from_file: true,
            compression: Compression::G4,
            t4_options: 0,
            t6_options: 0,
            photometric: Photometric::WhiteIsZero,
            fill_order_lsb: false,
            rows_per_strip: height,
            strips: vec![Strip {
                first_row: 0,
                rows: height,
                data,
            }],
            page_number: None,
        }
    }

    // T.6 codes (ITU-T T.6 tables 1-3 / T.4 tables 2-3).
    const V0: &str = "1";
    const HORIZONTAL: &str = "001";
    const WHITE_0: &str = "00110101";
    const WHITE_1728_MAKEUP: &str = "010011011";
    const BLACK_0: &str = "0000110111";
    const BLACK_1728_MAKEUP: &str = "0000001100101";
    const EOFB: &str = "000000000001000000000001";

    /// T.6 §2.2: a white row under a white reference line is a single V0 (a1 = b1 = end).
    #[test]
    fn t6_sec2_hand_coded_all_white_page() {
        let mut bits = Bits::new();
        for _ in 0..16 {
            bits.put(V0);
        }
        bits.put(EOFB);
        assert_eq!(bits.0, [0xFF, 0xFF, 0x00, 0x10, 0x01]);
        let page = g4_page(1728, 16, bits.0.clone());
        let pdf = pages_to_pdf(&[page], &PdfMeta::default()).unwrap();
        let got = &render(&pdf, &[(1728, 16, 204.0, 98.0)])[0];
        assert_eq!(got.count_black(), 0);
        assert_eq!((got.width, got.height), (1728, 16));
    }

    /// 4 white rows, 3 black rows, 5 white rows. The first black row is horizontal mode
    /// (white 0, black 1728); the next black rows are V0 V0 against the black reference; the
    /// first white row again is horizontal mode (white 1728, black 0).
    #[test]
    fn t6_sec2_hand_coded_black_band() {
        let mut bits = Bits::new();
        for _ in 0..4 {
            bits.put(V0);
        }
        bits.put(HORIZONTAL)
            .put(WHITE_0)
            .put(BLACK_1728_MAKEUP)
            .put(BLACK_0);
        for _ in 0..2 {
            bits.put(V0).put(V0);
        }
        bits.put(HORIZONTAL)
            .put(WHITE_1728_MAKEUP)
            .put(WHITE_0)
            .put(BLACK_0);
        for _ in 0..4 {
            bits.put(V0);
        }
        bits.put(EOFB);
        let pdf = pages_to_pdf(&[g4_page(1728, 12, bits.0)], &PdfMeta::default()).unwrap();
        let got = &render(&pdf, &[(1728, 12, 204.0, 98.0)])[0];
        let mut want = Bitmap::new(1728, 12, 204, 98);
        want.fill_rect(0, 4, 1728, 3, true);
        assert_eq!(got.mismatches(&want), Some(0));
    }

    #[test]
    fn pdf_page_size_follows_resolution() {
        let src = [Bitmap {
            rows: vec![0xFF; 216 * 1100],
            ..Bitmap::new(1728, 1100, 204, 98)
        }];
        let pages = read_pages(&write_bilevel_uncompressed(&src)).unwrap();
        let pdf = pages_to_pdf(&pages, &meta()).unwrap();
        let parsed = ParsedPdf::new(pdf).unwrap();
        let (w, h) = parsed.pages()[0].render_dimensions();
        // A4-ish: 1728 / 204 in × 1100 / 98 in.
        assert!((w - 1728.0 / 204.0 * 72.0).abs() < 0.01, "{w}");
        assert!((h - 1100.0 / 98.0 * 72.0).abs() < 0.01, "{h}");
    }

    #[test]
    fn pdf_info_dictionary_carries_meta() {
        let pages = read_pages(&write_bilevel_uncompressed(&[nearly_blank(
            64, 64, 204, 196, 1,
        )]))
        .unwrap();
        let pdf = pages_to_pdf(&pages, &meta()).unwrap();
        let text = String::from_utf8_lossy(&pdf);
        assert!(text.contains("/Title (Fax from +49 30 1234567)"), "{text}");
        assert!(text.contains("/Producer (coda)"));
        assert!(text.contains("/CreationDate (D:20250314093000Z)"));
        let bare = pages_to_pdf(&pages, &PdfMeta::default()).unwrap();
        let text = String::from_utf8_lossy(&bare);
        assert!(!text.contains("/Title") && !text.contains("/CreationDate"));
    }

    #[test]
    fn pdf_rejects_bad_input() {
        let good = read_pages(&write_bilevel_uncompressed(&[nearly_blank(
            64, 8, 204, 98, 1,
        )]))
        .unwrap()
        .remove(0);
        assert_eq!(pages_to_pdf(&[], &meta()), Err(PdfError::NoPages));
        for bad in ["20250314", "D:2025031", "D:20250314093000Z junk", "D:"] {
            let m = PdfMeta {
                creation_date: Some(bad.into()),
                ..meta()
            };
            assert_eq!(
                pages_to_pdf(std::slice::from_ref(&good), &m),
                Err(PdfError::BadDate(bad.into()))
            );
        }
        for ok in [
            "D:2025",
            "D:20250314093000+01'00'",
            "D:20250314093000-05'30'",
        ] {
            let m = PdfMeta {
                creation_date: Some(ok.into()),
                ..meta()
            };
            assert!(
                pages_to_pdf(std::slice::from_ref(&good), &m).is_ok(),
                "{ok}"
            );
        }
        let mut zero_dpi = good.clone();
        zero_dpi.y_dpi = 0.0;
        assert!(matches!(
            pages_to_pdf(&[zero_dpi], &meta()),
            Err(PdfError::BadPage { page: 1, .. })
        ));
        let mut gap = good.clone();
        gap.strips[0].first_row = 1;
        assert_eq!(
            pages_to_pdf(&[good.clone(), gap], &meta()),
            Err(PdfError::StripLayout { page: 2 })
        );
        let mut no_strips = good.clone();
        no_strips.strips.clear();
        assert_eq!(
            pages_to_pdf(&[no_strips], &meta()),
            Err(PdfError::StripLayout { page: 1 })
        );
        let mut short = good.clone();
        short.strips[0].data.truncate(10);
        assert_eq!(
            pages_to_pdf(&[short], &meta()),
            Err(PdfError::ShortStrip {
                page: 1,
                strip: 0,
                len: 10,
                needed: 64
            })
        );
    }
}
