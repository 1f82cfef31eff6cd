//! Minimal TIFF 6.0 support for fax pages.
//!
//! * [`read_pages`] reads the multi-page bilevel TIFF that spandsp writes when it receives a fax
//!   (one IFD per page, one strip per page with `RowsPerStrip = ImageLength`, `Compression` 3 or 4,
//!   `FillOrder = 2`, `Photometric = WhiteIsZero`, resolution as RATIONAL inch values; see
//!   spandsp `t4_rx.c` `set_tiff_directory_info`/`write_tiff_image`). It also accepts the other
//!   baseline variants libtiff produces: both byte orders, several strips per page, `FillOrder = 1`,
//!   `BlackIsZero`, uncompressed data and centimetre resolutions. Compressed strips are returned
//!   as they are (only bit-reversed to MSB-first), ready for PDF embedding without re-encoding.
//! * [`write_bilevel_uncompressed`] writes the multi-page uncompressed TIFF that spandsp reads
//!   (through libtiff) to send a fax.
//! * [`charts`] draws deterministic test pages.
//!
//! The reader treats its input as hostile: every offset is bounds-checked, the IFD chain is
//! loop-guarded and capped at [`MAX_PAGES`], dimensions are capped at [`MAX_WIDTH`] ×
//! [`MAX_HEIGHT`], and the strips of all pages together may not hold more bytes than the file.

use std::collections::HashSet;

use thiserror::Error;

/// Largest accepted `ImageWidth` (A3 at 400 dpi is 4864 px).
pub const MAX_WIDTH: u32 = 10_000;
/// Largest accepted `ImageLength`.
pub const MAX_HEIGHT: u32 = 100_000;
/// Largest number of IFDs (pages, including skipped thumbnails) read from one file.
pub const MAX_PAGES: usize = 1_000;

/// `T4Options` bit 0: two-dimensional coding (T.4 2-D, "G3 2D").
pub const T4_OPTION_2D: u32 = 1;
/// `T4Options` bit 1 / `T6Options` bit 1: uncompressed mode may be used.
pub const T4_OPTION_UNCOMPRESSED: u32 = 2;
/// `T4Options` bit 2: fill bits precede each EOL so that it ends on a byte boundary.
pub const T4_OPTION_FILL_BITS: u32 = 4;

/// Resolution assumed when a page carries no usable `XResolution`/`YResolution`
/// (R8 × fine, the most common fax resolution).
pub const FALLBACK_DPI: (f32, f32) = (204.0, 196.0);

/// Why a TIFF file was rejected. `page` numbers count IFDs from 1.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TiffError {
    /// The first bytes are not `II*\0` or `MM\0*`.
    #[error("not a TIFF file (bad header)")]
    BadHeader,
    /// BigTIFF (version 43) files are not supported.
    #[error("BigTIFF is not supported")]
    BigTiff,
    /// The file has no IFD.
    #[error("the TIFF file holds no pages")]
    NoPages,
    /// An IFD (or its entry table) does not fit inside the file.
    #[error("IFD at offset {offset} lies outside the file")]
    IfdOutOfBounds {
        /// Offset of the IFD.
        offset: u32,
    },
    /// The IFD chain points back to an IFD already read.
    #[error("IFD chain loops back to offset {offset}")]
    IfdLoop {
        /// The repeated offset.
        offset: u32,
    },
    /// More than [`MAX_PAGES`] IFDs.
    #[error("more than {MAX_PAGES} IFDs")]
    TooManyPages,
    /// A required tag is absent.
    #[error("page {page}: required tag {tag} is missing")]
    MissingTag {
        /// 1-based IFD number.
        page: usize,
        /// TIFF tag number.
        tag: u16,
    },
    /// A tag has a type or count this reader cannot use.
    #[error("page {page}: tag {tag} has unusable type {field_type} / count {count}")]
    BadTag {
        /// 1-based IFD number.
        page: usize,
        /// TIFF tag number.
        tag: u16,
        /// TIFF field type.
        field_type: u16,
        /// Value count.
        count: u32,
    },
    /// A tag's values point outside the file.
    #[error("page {page}: values of tag {tag} lie outside the file")]
    TagOutOfBounds {
        /// 1-based IFD number.
        page: usize,
        /// TIFF tag number.
        tag: u16,
    },
    /// Width or height is zero or above [`MAX_WIDTH`] / [`MAX_HEIGHT`].
    #[error("page {page}: image size {width}x{height} is outside the accepted range")]
    BadDimensions {
        /// 1-based IFD number.
        page: usize,
        /// `ImageWidth`.
        width: u32,
        /// `ImageLength`.
        height: u32,
    },
    /// A compression scheme other than none, CCITT T.4 or CCITT T.6.
    #[error("page {page}: unsupported compression {compression}")]
    UnsupportedCompression {
        /// 1-based IFD number.
        page: usize,
        /// `Compression` value.
        compression: u32,
    },
    /// Some other field value this reader does not handle (not bilevel, odd fill order, ...).
    #[error("page {page}: unsupported {field} {value}")]
    Unsupported {
        /// 1-based IFD number.
        page: usize,
        /// Field name.
        field: &'static str,
        /// Offending value.
        value: u32,
    },
    /// Fewer `StripOffsets`/`StripByteCounts` than `ImageLength`/`RowsPerStrip` requires.
    #[error(
        "page {page}: {offsets} strip offsets and {counts} byte counts, {expected} strips needed"
    )]
    StripCount {
        /// 1-based IFD number.
        page: usize,
        /// Number of `StripOffsets` values.
        offsets: u32,
        /// Number of `StripByteCounts` values.
        counts: u32,
        /// Strips needed for the image.
        expected: u32,
    },
    /// A strip extends past the end of the file.
    #[error("page {page}: strip {strip} (offset {offset}, {len} bytes) lies outside the file")]
    StripOutOfBounds {
        /// 1-based IFD number.
        page: usize,
        /// 0-based strip index.
        strip: usize,
        /// Strip offset.
        offset: u32,
        /// Strip byte count.
        len: u32,
    },
    /// A strip is empty, or an uncompressed strip is shorter than its rows.
    #[error("page {page}: strip {strip} holds {len} bytes, at least {needed} needed")]
    StripTooShort {
        /// 1-based IFD number.
        page: usize,
        /// 0-based strip index.
        strip: usize,
        /// Strip byte count.
        len: u32,
        /// Minimum byte count.
        needed: u64,
    },
    /// The strips of all pages together claim more bytes than the file holds (overlapping strips).
    #[error("strips claim more bytes than the file holds")]
    StripsExceedFile,
    /// The page is not uncompressed, so it cannot be turned into a [`Bitmap`] here.
    #[error("page is compressed ({0:?}); only uncompressed pages convert to a bitmap")]
    NotUncompressed(Compression),
    /// The file to write would need offsets beyond 4 GiB.
    #[error("output exceeds the 4 GiB TIFF limit")]
    TooLarge,
}

/// How a page's strips are coded (TIFF `Compression` tag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// 1: uncompressed, rows padded to whole bytes.
    None,
    /// 3: CCITT T.4 ("Group 3"); see [`FaxPage::t4_options`].
    G3,
    /// 4: CCITT T.6 ("Group 4"); see [`FaxPage::t6_options`].
    G4,
}

impl Compression {
    /// The TIFF `Compression` code.
    pub fn tiff_code(self) -> u16 {
        match self {
            Compression::None => 1,
            Compression::G3 => 3,
            Compression::G4 => 4,
        }
    }
}

/// TIFF `PhotometricInterpretation` for bilevel images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Photometric {
    /// 0: a 0 bit is white, 1 is black (fax convention; CCITT "white" runs are white).
    WhiteIsZero,
    /// 1: a 0 bit is black (CCITT "white" runs are then displayed black).
    BlackIsZero,
}

/// One strip of a page: `rows` image rows starting at `first_row`.
///
/// For CCITT compression each strip is an independent coded image (its first reference line is
/// white), so strips must be decoded or embedded separately.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Strip {
    /// First image row covered by this strip.
    pub first_row: u32,
    /// Number of rows in this strip.
    pub rows: u32,
    /// Strip bytes, MSB-first bit order. Uncompressed strips hold exactly `rows` × stride bytes.
    pub data: Vec<u8>,
}

/// One page read from a TIFF file.
#[derive(Debug, Clone, PartialEq)]
pub struct FaxPage {
    /// `ImageWidth` in pixels.
    pub width: u32,
    /// `ImageLength` in pixels (rows).
    pub height: u32,
    /// Horizontal resolution in dots per inch.
    pub x_dpi: f32,
    /// Vertical resolution in dots per inch.
    pub y_dpi: f32,
    /// False when the file had no usable resolution and [`FALLBACK_DPI`] was used.
    pub resolution_from_file: bool,
    /// Strip coding.
    pub compression: Compression,
    /// `T4Options` for [`Compression::G3`] (`T4_OPTION_*` bits; default 0 = 1-D, no fill bits).
    pub t4_options: u32,
    /// `T6Options` for [`Compression::G4`] (default 0).
    pub t6_options: u32,
    /// Pixel value meaning.
    pub photometric: Photometric,
    /// The file used `FillOrder = 2`; the bytes in [`Strip::data`] are already bit-reversed.
    pub fill_order_lsb: bool,
    /// `RowsPerStrip`, clamped to `height`.
    pub rows_per_strip: u32,
    /// The strips in row order; together they cover rows `0..height` exactly.
    pub strips: Vec<Strip>,
    /// `PageNumber` (0-based page, total) if present.
    pub page_number: Option<(u16, u16)>,
}

impl FaxPage {
    /// Bytes per uncompressed row.
    pub fn stride(&self) -> usize {
        (self.width as usize).div_ceil(8)
    }

    /// Total strip bytes.
    pub fn data_len(&self) -> usize {
        self.strips.iter().map(|s| s.data.len()).sum()
    }

    /// Convert an uncompressed page to a [`Bitmap`] (1 = black), honouring `photometric`.
    /// The resolution is rounded to whole dpi.
    pub fn to_bitmap(&self) -> Result<Bitmap, TiffError> {
        if self.compression != Compression::None {
            return Err(TiffError::NotUncompressed(self.compression));
        }
        let mut rows = Vec::with_capacity(self.stride() * self.height as usize);
        for strip in &self.strips {
            rows.extend_from_slice(&strip.data);
        }
        rows.resize(self.stride() * self.height as usize, 0);
        if self.photometric == Photometric::BlackIsZero {
            rows.iter_mut().for_each(|b| *b = !*b);
        }
        let mut bitmap = Bitmap {
            width: self.width,
            height: self.height,
            x_dpi: dpi_to_u16(self.x_dpi),
            y_dpi: dpi_to_u16(self.y_dpi),
            rows,
        };
        bitmap.clear_padding();
        Ok(bitmap)
    }
}

fn dpi_to_u16(dpi: f32) -> u16 {
    // `as` saturates and maps NaN to 0; `read_pages` only yields 1..=10000.
    dpi.round() as u16
}

// ------------------------------------------------------------------------------------------------
// Reader
// ------------------------------------------------------------------------------------------------

mod tag {
    pub const NEW_SUBFILE_TYPE: u16 = 254;
    pub const SUBFILE_TYPE: u16 = 255;
    pub const IMAGE_WIDTH: u16 = 256;
    pub const IMAGE_LENGTH: u16 = 257;
    pub const BITS_PER_SAMPLE: u16 = 258;
    pub const COMPRESSION: u16 = 259;
    pub const PHOTOMETRIC: u16 = 262;
    pub const FILL_ORDER: u16 = 266;
    pub const STRIP_OFFSETS: u16 = 273;
    pub const ORIENTATION: u16 = 274;
    pub const SAMPLES_PER_PIXEL: u16 = 277;
    pub const ROWS_PER_STRIP: u16 = 278;
    pub const STRIP_BYTE_COUNTS: u16 = 279;
    pub const X_RESOLUTION: u16 = 282;
    pub const Y_RESOLUTION: u16 = 283;
    pub const PLANAR_CONFIG: u16 = 284;
    pub const T4_OPTIONS: u16 = 292;
    pub const T6_OPTIONS: u16 = 293;
    pub const RESOLUTION_UNIT: u16 = 296;
    pub const PAGE_NUMBER: u16 = 297;
    pub const SOFTWARE: u16 = 305;
}

mod field_type {
    pub const BYTE: u16 = 1;
    pub const ASCII: u16 = 2;
    pub const SHORT: u16 = 3;
    pub const LONG: u16 = 4;
    pub const RATIONAL: u16 = 5;
}

/// Size in bytes of one value of a TIFF field type (TIFF 6.0 §2 plus the IFD type of TN1).
fn type_size(field_type: u16) -> Option<u64> {
    match field_type {
        1 | 2 | 6 | 7 => Some(1),
        3 | 8 => Some(2),
        4 | 9 | 11 | 13 => Some(4),
        5 | 10 | 12 => Some(8),
        _ => None,
    }
}

#[derive(Clone, Copy)]
enum ByteOrder {
    Little,
    Big,
}

#[derive(Clone, Copy)]
struct Entry {
    tag: u16,
    field_type: u16,
    count: u32,
    /// File offset of the entry's 4-byte value/offset field.
    value_field: u64,
}

struct Reader<'a> {
    bytes: &'a [u8],
    order: ByteOrder,
}

impl Reader<'_> {
    fn slice(&self, offset: u64, len: u64) -> Option<&[u8]> {
        let start = usize::try_from(offset).ok()?;
        let end = start.checked_add(usize::try_from(len).ok()?)?;
        self.bytes.get(start..end)
    }

    fn u16_at(&self, offset: u64) -> Option<u16> {
        let b: [u8; 2] = self.slice(offset, 2)?.try_into().ok()?;
        Some(match self.order {
            ByteOrder::Little => u16::from_le_bytes(b),
            ByteOrder::Big => u16::from_be_bytes(b),
        })
    }

    fn u32_at(&self, offset: u64) -> Option<u32> {
        let b: [u8; 4] = self.slice(offset, 4)?.try_into().ok()?;
        Some(match self.order {
            ByteOrder::Little => u32::from_le_bytes(b),
            ByteOrder::Big => u32::from_be_bytes(b),
        })
    }

    /// File offset and length of an entry's values, bounds-checked.
    fn values(&self, e: &Entry, page: usize) -> Result<u64, TiffError> {
        let bad = || TiffError::BadTag {
            page,
            tag: e.tag,
            field_type: e.field_type,
            count: e.count,
        };
        let size = type_size(e.field_type).ok_or_else(bad)?;
        let len = size * u64::from(e.count);
        let start = if len <= 4 {
            e.value_field
        } else {
            u64::from(self.u32_at(e.value_field).ok_or_else(bad)?)
        };
        if self.slice(start, len).is_none() {
            return Err(TiffError::TagOutOfBounds { page, tag: e.tag });
        }
        Ok(start)
    }

    /// Unsigned integer values of a BYTE/SHORT/LONG entry.
    fn uints(&self, e: &Entry, page: usize) -> Result<Vec<u32>, TiffError> {
        let start = self.values(e, page)?;
        let out_of_bounds = TiffError::TagOutOfBounds { page, tag: e.tag };
        (0..u64::from(e.count))
            .map(|i| {
                let v = match e.field_type {
                    field_type::BYTE => self.slice(start + i, 1).map(|b| u32::from(b[0])),
                    field_type::SHORT => self.u16_at(start + 2 * i).map(u32::from),
                    field_type::LONG => self.u32_at(start + 4 * i),
                    _ => {
                        return Err(TiffError::BadTag {
                            page,
                            tag: e.tag,
                            field_type: e.field_type,
                            count: e.count,
                        })
                    }
                };
                v.ok_or_else(|| out_of_bounds.clone())
            })
            .collect()
    }

    /// First unsigned integer value of a BYTE/SHORT/LONG entry.
    fn uint(&self, e: &Entry, page: usize) -> Result<u32, TiffError> {
        if e.count == 0 {
            return Err(TiffError::BadTag {
                page,
                tag: e.tag,
                field_type: e.field_type,
                count: e.count,
            });
        }
        let one = Entry { count: 1, ..*e };
        Ok(self.uints(&one, page)?.first().copied().unwrap_or(0))
    }

    /// A RATIONAL (or integer) value as `f64`; `None` when unusable (zero denominator, bad type).
    fn rational(&self, e: &Entry, page: usize) -> Option<f64> {
        if e.count == 0 {
            return None;
        }
        match e.field_type {
            field_type::RATIONAL => {
                let start = self.values(e, page).ok()?;
                let num = self.u32_at(start)?;
                let den = self.u32_at(start + 4)?;
                (den != 0).then(|| f64::from(num) / f64::from(den))
            }
            field_type::BYTE | field_type::SHORT | field_type::LONG => {
                self.uint(e, page).ok().map(f64::from)
            }
            _ => None,
        }
    }
}

/// The entries of one IFD this reader cares about.
#[derive(Default)]
struct Ifd {
    entries: Vec<Entry>,
    next: u32,
}

impl Ifd {
    fn get(&self, tag: u16) -> Option<&Entry> {
        self.entries.iter().find(|e| e.tag == tag)
    }
}

fn read_ifd(r: &Reader<'_>, offset: u32) -> Result<Ifd, TiffError> {
    let oob = TiffError::IfdOutOfBounds { offset };
    let base = u64::from(offset);
    let n = r.u16_at(base).ok_or(oob.clone())?;
    let table = base + 2;
    let next_at = table + 12 * u64::from(n);
    let next = r.u32_at(next_at).ok_or(oob.clone())?;
    let mut ifd = Ifd {
        entries: Vec::new(),
        next,
    };
    for i in 0..u64::from(n) {
        let at = table + 12 * i;
        let tag = r.u16_at(at).ok_or(oob.clone())?;
        // First occurrence wins; unknown tags are skipped without looking at their values.
        if ifd.get(tag).is_some() || !is_known_tag(tag) {
            continue;
        }
        ifd.entries.push(Entry {
            tag,
            field_type: r.u16_at(at + 2).ok_or(oob.clone())?,
            count: r.u32_at(at + 4).ok_or(oob.clone())?,
            value_field: at + 8,
        });
    }
    Ok(ifd)
}

fn is_known_tag(t: u16) -> bool {
    matches!(
        t,
        tag::NEW_SUBFILE_TYPE
            | tag::SUBFILE_TYPE
            | tag::IMAGE_WIDTH
            | tag::IMAGE_LENGTH
            | tag::BITS_PER_SAMPLE
            | tag::COMPRESSION
            | tag::PHOTOMETRIC
            | tag::FILL_ORDER
            | tag::STRIP_OFFSETS
            | tag::SAMPLES_PER_PIXEL
            | tag::ROWS_PER_STRIP
            | tag::STRIP_BYTE_COUNTS
            | tag::X_RESOLUTION
            | tag::Y_RESOLUTION
            | tag::T4_OPTIONS
            | tag::T6_OPTIONS
            | tag::RESOLUTION_UNIT
            | tag::PAGE_NUMBER
    )
}

/// Read every page of a bilevel fax TIFF.
///
/// Reduced-resolution images (`NewSubfileType` bit 0, `SubfileType = 2`) are skipped.
/// Compressed strips are returned unchanged apart from bit reversal for `FillOrder = 2`.
pub fn read_pages(bytes: &[u8]) -> Result<Vec<FaxPage>, TiffError> {
    let order = match bytes.get(0..2) {
        Some(b"II") => ByteOrder::Little,
        Some(b"MM") => ByteOrder::Big,
        _ => return Err(TiffError::BadHeader),
    };
    let r = Reader { bytes, order };
    match r.u16_at(2) {
        Some(42) => {}
        Some(43) => return Err(TiffError::BigTiff),
        _ => return Err(TiffError::BadHeader),
    }
    let mut offset = r.u32_at(4).ok_or(TiffError::BadHeader)?;
    let mut seen = HashSet::new();
    let mut pages = Vec::new();
    // Sum of all strip byte counts; bounded by the file size (strips must not overlap).
    let mut budget = bytes.len() as u64;
    while offset != 0 {
        if !seen.insert(offset) {
            return Err(TiffError::IfdLoop { offset });
        }
        if seen.len() > MAX_PAGES {
            return Err(TiffError::TooManyPages);
        }
        let ifd = read_ifd(&r, offset)?;
        if let Some(page) = read_page(&r, &ifd, seen.len(), &mut budget)? {
            pages.push(page);
        }
        offset = ifd.next;
    }
    if pages.is_empty() {
        return Err(TiffError::NoPages);
    }
    Ok(pages)
}

fn read_page(
    r: &Reader<'_>,
    ifd: &Ifd,
    page: usize,
    budget: &mut u64,
) -> Result<Option<FaxPage>, TiffError> {
    let opt_uint = |t: u16| -> Result<Option<u32>, TiffError> {
        ifd.get(t).map(|e| r.uint(e, page)).transpose()
    };
    let required = |t: u16| -> Result<&Entry, TiffError> {
        ifd.get(t).ok_or(TiffError::MissingTag { page, tag: t })
    };

    // TIFF 6.0 §8: NewSubfileType bit 0 = reduced-resolution version of another image.
    if opt_uint(tag::NEW_SUBFILE_TYPE)?.unwrap_or(0) & 1 != 0
        || opt_uint(tag::SUBFILE_TYPE)? == Some(2)
    {
        return Ok(None);
    }

    let width = r.uint(required(tag::IMAGE_WIDTH)?, page)?;
    let height = r.uint(required(tag::IMAGE_LENGTH)?, page)?;
    if width == 0 || height == 0 || width > MAX_WIDTH || height > MAX_HEIGHT {
        return Err(TiffError::BadDimensions {
            page,
            width,
            height,
        });
    }

    let unsupported =
        |field: &'static str, value: u32| TiffError::Unsupported { page, field, value };
    let spp = opt_uint(tag::SAMPLES_PER_PIXEL)?.unwrap_or(1);
    if spp != 1 {
        return Err(unsupported("SamplesPerPixel", spp));
    }
    if let Some(e) = ifd.get(tag::BITS_PER_SAMPLE) {
        if let Some(&bps) = r.uints(e, page)?.iter().find(|&&v| v != 1) {
            return Err(unsupported("BitsPerSample", bps));
        }
    }
    let compression = match opt_uint(tag::COMPRESSION)?.unwrap_or(1) {
        1 => Compression::None,
        3 => Compression::G3,
        4 => Compression::G4,
        other => {
            return Err(TiffError::UnsupportedCompression {
                page,
                compression: other,
            })
        }
    };
    let t4_options = opt_uint(tag::T4_OPTIONS)?.unwrap_or(0);
    let t6_options = opt_uint(tag::T6_OPTIONS)?.unwrap_or(0);
    let photometric = match opt_uint(tag::PHOTOMETRIC)?.unwrap_or(0) {
        0 => Photometric::WhiteIsZero,
        1 => Photometric::BlackIsZero,
        other => return Err(unsupported("PhotometricInterpretation", other)),
    };
    let fill_order_lsb = match opt_uint(tag::FILL_ORDER)?.unwrap_or(1) {
        1 => false,
        2 => true,
        other => return Err(unsupported("FillOrder", other)),
    };
    let (x_dpi, y_dpi, resolution_from_file) = resolution(r, ifd, page);
    let page_number = match ifd.get(tag::PAGE_NUMBER) {
        Some(e) if e.count >= 2 => {
            let v = r.uints(&Entry { count: 2, ..*e }, page)?;
            match v.as_slice() {
                [a, b] => Some((clamp_u16(*a), clamp_u16(*b))),
                _ => None,
            }
        }
        _ => None,
    };

    // Strips (TIFF 6.0 §3 "StripsPerImage").
    let rows_per_strip = opt_uint(tag::ROWS_PER_STRIP)?
        .unwrap_or(u32::MAX)
        .clamp(1, height);
    let expected = height.div_ceil(rows_per_strip);
    let offsets_e = required(tag::STRIP_OFFSETS)?;
    let counts_e = required(tag::STRIP_BYTE_COUNTS)?;
    if offsets_e.count < expected || counts_e.count < expected {
        return Err(TiffError::StripCount {
            page,
            offsets: offsets_e.count,
            counts: counts_e.count,
            expected,
        });
    }
    // Only the strips the image needs are read; extra values are ignored, as libtiff does.
    let offsets = r.uints(
        &Entry {
            count: expected,
            ..*offsets_e
        },
        page,
    )?;
    let counts = r.uints(
        &Entry {
            count: expected,
            ..*counts_e
        },
        page,
    )?;
    let stride = u64::from(width.div_ceil(8));
    let mut strips = Vec::with_capacity(offsets.len());
    for (i, (&off, &len)) in offsets.iter().zip(&counts).enumerate() {
        // `i < expected <= height`, so this fits in u32.
        let first_row = (i as u32).saturating_mul(rows_per_strip);
        let rows = rows_per_strip.min(height - first_row);
        let data = r
            .slice(u64::from(off), u64::from(len))
            .ok_or(TiffError::StripOutOfBounds {
                page,
                strip: i,
                offset: off,
                len,
            })?;
        let needed = match compression {
            Compression::None => stride * u64::from(rows),
            _ => 1,
        };
        if u64::from(len) < needed {
            return Err(TiffError::StripTooShort {
                page,
                strip: i,
                len,
                needed,
            });
        }
        *budget = budget
            .checked_sub(u64::from(len))
            .ok_or(TiffError::StripsExceedFile)?;
        // `needed <= len`, a usize, for uncompressed strips.
        let keep = match compression {
            Compression::None => needed as usize,
            _ => data.len(),
        };
        let mut data = data.get(..keep).unwrap_or(data).to_vec();
        if fill_order_lsb {
            data.iter_mut().for_each(|b| *b = b.reverse_bits());
        }
        strips.push(Strip {
            first_row,
            rows,
            data,
        });
    }

    Ok(Some(FaxPage {
        width,
        height,
        x_dpi,
        y_dpi,
        resolution_from_file,
        compression,
        t4_options,
        t6_options,
        photometric,
        fill_order_lsb,
        rows_per_strip,
        strips,
        page_number,
    }))
}

fn clamp_u16(v: u32) -> u16 {
    u16::try_from(v).unwrap_or(u16::MAX)
}

/// `XResolution`/`YResolution`/`ResolutionUnit` → dpi (TIFF 6.0 §8), or [`FALLBACK_DPI`].
fn resolution(r: &Reader<'_>, ifd: &Ifd, page: usize) -> (f32, f32, bool) {
    let unit = ifd
        .get(tag::RESOLUTION_UNIT)
        .and_then(|e| r.uint(e, page).ok())
        .unwrap_or(2);
    let per_inch = match unit {
        // 1 = no absolute unit; fax files that say so mean dpi in practice.
        1 | 2 => 1.0,
        3 => 2.54,
        _ => return (FALLBACK_DPI.0, FALLBACK_DPI.1, false),
    };
    let get = |t: u16| {
        ifd.get(t)
            .and_then(|e| r.rational(e, page))
            .map(|v| v * per_inch)
            .filter(|v| v.is_finite() && (1.0..=10_000.0).contains(v))
    };
    match (get(tag::X_RESOLUTION), get(tag::Y_RESOLUTION)) {
        (Some(x), Some(y)) => (x as f32, y as f32, true),
        _ => (FALLBACK_DPI.0, FALLBACK_DPI.1, false),
    }
}

// ------------------------------------------------------------------------------------------------
// Bitmap and writer
// ------------------------------------------------------------------------------------------------

/// A bilevel page: 1 bit per pixel, MSB first, 1 = black, rows padded to whole bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bitmap {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels (rows).
    pub height: u32,
    /// Horizontal resolution (dpi), e.g. 204.
    pub x_dpi: u16,
    /// Vertical resolution (dpi), e.g. 98, 196 or 391.
    pub y_dpi: u16,
    /// `height` rows of [`Bitmap::stride`] bytes.
    pub rows: Vec<u8>,
}

impl Bitmap {
    /// An all-white bitmap.
    pub fn new(width: u32, height: u32, x_dpi: u16, y_dpi: u16) -> Self {
        let stride = (width as usize).div_ceil(8);
        Bitmap {
            width,
            height,
            x_dpi,
            y_dpi,
            rows: vec![0; stride * height as usize],
        }
    }

    /// Bytes per row.
    pub fn stride(&self) -> usize {
        (self.width as usize).div_ceil(8)
    }

    fn index(&self, x: u32, y: u32) -> Option<(usize, u8)> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let i = y as usize * self.stride() + x as usize / 8;
        Some((i, 0x80 >> (x % 8)))
    }

    /// Set pixel (x, y); coordinates outside the bitmap are ignored.
    pub fn set(&mut self, x: u32, y: u32, black: bool) {
        if let Some((i, mask)) = self.index(x, y) {
            if let Some(b) = self.rows.get_mut(i) {
                if black {
                    *b |= mask;
                } else {
                    *b &= !mask;
                }
            }
        }
    }

    /// Pixel (x, y) is black; outside the bitmap is white.
    pub fn get(&self, x: u32, y: u32) -> bool {
        self.index(x, y)
            .and_then(|(i, mask)| self.rows.get(i).map(|b| b & mask != 0))
            .unwrap_or(false)
    }

    /// Fill a rectangle, clipped to the bitmap.
    pub fn fill_rect(&mut self, x: u32, y: u32, w: u32, h: u32, black: bool) {
        let x_end = x.saturating_add(w).min(self.width);
        let y_end = y.saturating_add(h).min(self.height);
        for yy in y..y_end {
            for xx in x..x_end {
                self.set(xx, yy, black);
            }
        }
    }

    /// Number of black pixels.
    pub fn count_black(&self) -> u64 {
        let mut copy = self.clone();
        copy.clear_padding();
        copy.rows.iter().map(|b| u64::from(b.count_ones())).sum()
    }

    /// Number of pixels that differ from `other`, or `None` if the sizes differ.
    pub fn mismatches(&self, other: &Bitmap) -> Option<u64> {
        if self.width != other.width || self.height != other.height {
            return None;
        }
        let mut n = 0;
        for y in 0..self.height {
            for x in 0..self.width {
                n += u64::from(self.get(x, y) != other.get(x, y));
            }
        }
        Some(n)
    }

    /// Zero the bits past `width` in each row (they carry no pixels).
    fn clear_padding(&mut self) {
        let stride = self.stride();
        let rem = self.width % 8;
        if rem == 0 || stride == 0 {
            return;
        }
        let keep = 0xFFu8 << (8 - rem);
        for row in self.rows.chunks_mut(stride) {
            if let Some(last) = row.last_mut() {
                *last &= keep;
            }
        }
    }
}

/// Value written in the `Software` tag.
pub const SOFTWARE: &str = "coda";

/// Write `pages` as a multi-page uncompressed bilevel TIFF (little-endian, `Compression = 1`,
/// `Photometric = WhiteIsZero`, `FillOrder = 1`, inch resolutions, `PageNumber`, one strip per page).
///
/// # Panics
/// If `pages` is empty or the file would exceed 4 GiB (programming errors; use
/// [`try_write_bilevel_uncompressed`] to get an error instead).
pub fn write_bilevel_uncompressed(pages: &[Bitmap]) -> Vec<u8> {
    match try_write_bilevel_uncompressed(pages) {
        Ok(v) => v,
        Err(e) => panic!("write_bilevel_uncompressed: {e}"),
    }
}

/// Fallible form of [`write_bilevel_uncompressed`]: [`TiffError::NoPages`] for an empty slice,
/// [`TiffError::TooLarge`] beyond 4 GiB. Each page's strip is exactly `height` × stride bytes
/// (`rows` is zero-padded or truncated to that).
pub fn try_write_bilevel_uncompressed(pages: &[Bitmap]) -> Result<Vec<u8>, TiffError> {
    if pages.is_empty() {
        return Err(TiffError::NoPages);
    }
    let total = u16::try_from(pages.len()).unwrap_or(u16::MAX);
    let mut w = IfdWriter::new(ByteOrder::Little);
    for (i, bm) in pages.iter().enumerate() {
        let strip_len = bm.stride() * bm.height as usize;
        let mut strip = bm.rows.clone();
        strip.resize(strip_len, 0);
        let mut page = Bitmap {
            rows: strip,
            ..bm.clone()
        };
        page.clear_padding();
        let number = u16::try_from(i).unwrap_or(u16::MAX);
        w.page(
            &[
                (tag::NEW_SUBFILE_TYPE, Value::Long(vec![2])),
                (tag::IMAGE_WIDTH, Value::Long(vec![bm.width])),
                (tag::IMAGE_LENGTH, Value::Long(vec![bm.height])),
                (tag::BITS_PER_SAMPLE, Value::Short(vec![1])),
                (tag::COMPRESSION, Value::Short(vec![1])),
                (tag::PHOTOMETRIC, Value::Short(vec![0])),
                (tag::FILL_ORDER, Value::Short(vec![1])),
                (tag::STRIP_OFFSETS, Value::StripOffsets),
                (tag::ORIENTATION, Value::Short(vec![1])),
                (tag::SAMPLES_PER_PIXEL, Value::Short(vec![1])),
                (tag::ROWS_PER_STRIP, Value::Long(vec![bm.height])),
                (tag::STRIP_BYTE_COUNTS, Value::StripByteCounts),
                (
                    tag::X_RESOLUTION,
                    Value::Rational(vec![(u32::from(bm.x_dpi), 1)]),
                ),
                (
                    tag::Y_RESOLUTION,
                    Value::Rational(vec![(u32::from(bm.y_dpi), 1)]),
                ),
                (tag::PLANAR_CONFIG, Value::Short(vec![1])),
                (tag::RESOLUTION_UNIT, Value::Short(vec![2])),
                (tag::PAGE_NUMBER, Value::Short(vec![number, total])),
                (tag::SOFTWARE, Value::Ascii(SOFTWARE.into())),
            ],
            &[&page.rows],
        )?;
    }
    Ok(w.finish())
}

/// A tag value for [`IfdWriter`].
enum Value {
    Short(Vec<u16>),
    Long(Vec<u32>),
    Rational(Vec<(u32, u32)>),
    Ascii(String),
    /// Filled in with the offsets of the page's strips.
    StripOffsets,
    /// Filled in with the lengths of the page's strips.
    StripByteCounts,
}

/// Small TIFF writer: header, then per page `IFD, out-of-line values, strips`, IFDs chained.
/// Tags must be given in ascending order.
struct IfdWriter {
    order: ByteOrder,
    out: Vec<u8>,
    /// Where the previous "next IFD" offset (or the header's first-IFD offset) is stored.
    link_at: usize,
}

impl IfdWriter {
    fn new(order: ByteOrder) -> Self {
        let mut w = IfdWriter {
            order,
            out: Vec::new(),
            link_at: 4,
        };
        match order {
            ByteOrder::Little => w.out.extend_from_slice(b"II"),
            ByteOrder::Big => w.out.extend_from_slice(b"MM"),
        }
        w.put16(42);
        w.put32(0);
        w
    }

    fn put16(&mut self, v: u16) {
        match self.order {
            ByteOrder::Little => self.out.extend_from_slice(&v.to_le_bytes()),
            ByteOrder::Big => self.out.extend_from_slice(&v.to_be_bytes()),
        }
    }

    fn put32(&mut self, v: u32) {
        match self.order {
            ByteOrder::Little => self.out.extend_from_slice(&v.to_le_bytes()),
            ByteOrder::Big => self.out.extend_from_slice(&v.to_be_bytes()),
        }
    }

    fn patch32(&mut self, at: usize, v: u32) {
        let b = match self.order {
            ByteOrder::Little => v.to_le_bytes(),
            ByteOrder::Big => v.to_be_bytes(),
        };
        if let Some(dst) = self.out.get_mut(at..at + 4) {
            dst.copy_from_slice(&b);
        }
    }

    fn offset(len: usize) -> Result<u32, TiffError> {
        u32::try_from(len).map_err(|_| TiffError::TooLarge)
    }

    /// Append one IFD with its strips.
    fn page(&mut self, tags: &[(u16, Value)], strips: &[&[u8]]) -> Result<(), TiffError> {
        if !self.out.len().is_multiple_of(2) {
            self.out.push(0);
        }
        let ifd_at = self.out.len();
        let ifd_off = Self::offset(ifd_at)?;
        self.patch32(self.link_at, ifd_off);
        let n = tags.len();
        let ifd_len = 2 + 12 * n + 4;

        // Lay out out-of-line values, then the strips, after the IFD.
        let mut extra: Vec<u8> = Vec::new();
        let mut encoded: Vec<(u16, u16, u32, Vec<u8>)> = Vec::with_capacity(n);
        // Size of the out-of-line area is needed for strip offsets; compute it first.
        let inline_or_extra = |bytes: usize| if bytes > 4 { bytes + bytes % 2 } else { 0 };
        let mut extra_len = 0usize;
        for (_, v) in tags {
            extra_len += inline_or_extra(match v {
                Value::Short(s) => 2 * s.len(),
                Value::Long(l) => 4 * l.len(),
                Value::Rational(r) => 8 * r.len(),
                Value::Ascii(s) => s.len() + 1,
                Value::StripOffsets | Value::StripByteCounts => 4 * strips.len(),
            });
        }
        let mut strip_offsets = Vec::with_capacity(strips.len());
        let mut pos = ifd_at + ifd_len + extra_len;
        for s in strips {
            pos += pos % 2;
            strip_offsets.push(Self::offset(pos)?);
            pos += s.len();
        }
        Self::offset(pos)?;
        let strip_lens = strips
            .iter()
            .map(|s| Self::offset(s.len()))
            .collect::<Result<Vec<_>, _>>()?;

        let mut tmp = IfdWriter {
            order: self.order,
            out: Vec::new(),
            link_at: 0,
        };
        for (t, v) in tags {
            tmp.out.clear();
            let (ty, count) = match v {
                Value::Short(s) => {
                    s.iter().for_each(|&x| tmp.put16(x));
                    (field_type::SHORT, s.len())
                }
                Value::Long(l) => {
                    l.iter().for_each(|&x| tmp.put32(x));
                    (field_type::LONG, l.len())
                }
                Value::Rational(r) => {
                    for &(a, b) in r {
                        tmp.put32(a);
                        tmp.put32(b);
                    }
                    (field_type::RATIONAL, r.len())
                }
                Value::Ascii(s) => {
                    tmp.out.extend_from_slice(s.as_bytes());
                    tmp.out.push(0);
                    (field_type::ASCII, s.len() + 1)
                }
                Value::StripOffsets => {
                    strip_offsets.iter().for_each(|&x| tmp.put32(x));
                    (field_type::LONG, strips.len())
                }
                Value::StripByteCounts => {
                    strip_lens.iter().for_each(|&x| tmp.put32(x));
                    (field_type::LONG, strips.len())
                }
            };
            let count = u32::try_from(count).map_err(|_| TiffError::TooLarge)?;
            encoded.push((*t, ty, count, tmp.out.clone()));
        }

        let n16 = u16::try_from(n).map_err(|_| TiffError::TooLarge)?;
        self.put16(n16);
        let extra_base = ifd_at + ifd_len;
        for (t, ty, count, bytes) in &encoded {
            self.put16(*t);
            self.put16(*ty);
            self.put32(*count);
            if bytes.len() <= 4 {
                let mut field = bytes.clone();
                field.resize(4, 0);
                self.out.extend_from_slice(&field);
            } else {
                self.put32(Self::offset(extra_base + extra.len())?);
                extra.extend_from_slice(bytes);
                if !extra.len().is_multiple_of(2) {
                    extra.push(0);
                }
            }
        }
        self.link_at = self.out.len();
        self.put32(0);
        self.out.extend_from_slice(&extra);
        for (s, &off) in strips.iter().zip(&strip_offsets) {
            self.out.resize(off as usize, 0);
            self.out.extend_from_slice(s);
        }
        Ok(())
    }

    fn finish(self) -> Vec<u8> {
        self.out
    }
}

// ------------------------------------------------------------------------------------------------
// Test charts
// ------------------------------------------------------------------------------------------------

/// Deterministic test pages (same arguments → same pixels).
pub mod charts {
    use super::Bitmap;

    /// SplitMix64: small, deterministic, good enough for test patterns.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        /// Uniform in `0..n` (`n > 0`; returns 0 for `n == 0`).
        fn below(&mut self, n: u32) -> u32 {
            if n == 0 {
                0
            } else {
                (self.next() % u64::from(n)) as u32
            }
        }
    }

    /// Millimetres to pixels at `dpi`, at least 1.
    fn mm(mm: f32, dpi: u16) -> u32 {
        ((mm * f32::from(dpi) / 25.4).round() as u32).max(1)
    }

    fn frame(b: &mut Bitmap, t: u32) {
        let (w, h) = (b.width, b.height);
        b.fill_rect(0, 0, w, t, true);
        b.fill_rect(0, h.saturating_sub(t), w, t, true);
        b.fill_rect(0, 0, t, h, true);
        b.fill_rect(w.saturating_sub(t), 0, t, h, true);
    }

    /// A busy page: a frame, a band of rules of 1–4 px, a checkerboard band (1, 2 and 4 px
    /// cells), lines of random 5×7 "glyphs" grouped in words, and a diagonal corner to corner.
    pub fn dense_chart(width: u32, height: u32, x_dpi: u16, y_dpi: u16, seed: u64) -> Bitmap {
        let mut b = Bitmap::new(width, height, x_dpi, y_dpi);
        let mut rng = Rng(seed ^ 0xC0DA_FA58);
        frame(&mut b, 2);

        // Rules band: the top 8 %.
        let band = (height / 12).max(1);
        let mut y = 4;
        let mut t = 1;
        while y + t < band {
            b.fill_rect(4, y, width.saturating_sub(8) / 2, t, true);
            y += t + 3;
            t = t % 4 + 1;
        }
        let mut x = width / 2 + 4;
        let mut t = 1;
        while x + t < width.saturating_sub(4) {
            b.fill_rect(x, 4, t, band.saturating_sub(4), true);
            x += t + 2 + rng.below(6);
            t = t % 4 + 1;
        }

        // Checkerboard band: three stripes with 1, 2 and 4 px cells.
        let cb_top = band + 2;
        let cb_h = (height / 12).max(3);
        for yy in 0..cb_h {
            let cell = [1, 2, 4][(yy * 3 / cb_h).min(2) as usize];
            for xx in 4..width.saturating_sub(4) {
                if ((xx / cell) + (yy / cell)).is_multiple_of(2) {
                    b.set(xx, cb_top + yy, true);
                }
            }
        }

        // Text: glyph cells about 1.8 mm × 2.5 mm.
        let gw = mm(1.8, x_dpi).max(5);
        let gh = mm(2.5, y_dpi).max(7);
        let line_pitch = gh + gh / 2 + 1;
        let left = mm(10.0, x_dpi);
        let right = width.saturating_sub(mm(10.0, x_dpi));
        let mut ty = cb_top + cb_h + gh / 2 + 2;
        while ty + gh + 4 < height {
            let mut tx = left + rng.below(gw * 2);
            while tx + gw < right {
                let word = 1 + rng.below(9);
                for _ in 0..word {
                    if tx + gw >= right {
                        break;
                    }
                    glyph(&mut b, &mut rng, tx, ty, gw, gh);
                    tx += gw + gw / 4 + 1;
                }
                tx += gw;
            }
            ty += line_pitch;
        }

        // Diagonal, 2 px wide.
        if width > 1 && height > 1 {
            for yy in 0..height {
                let xx = (u64::from(yy) * u64::from(width - 1) / u64::from(height - 1)) as u32;
                b.set(xx, yy, true);
                b.set(xx + 1, yy, true);
            }
        }
        b
    }

    /// A random 5×7 pattern scaled into a `w`×`h` cell with its top-left at (x, y).
    fn glyph(b: &mut Bitmap, rng: &mut Rng, x: u32, y: u32, w: u32, h: u32) {
        let bits = rng.next();
        for gy in 0..7u32 {
            for gx in 0..5u32 {
                if (bits >> (gy * 5 + gx)) & 1 == 1 {
                    let (x0, x1) = (x + gx * w / 5, x + (gx + 1) * w / 5);
                    let (y0, y1) = (y + gy * h / 7, y + (gy + 1) * h / 7);
                    b.fill_rect(x0, y0, x1 - x0, y1 - y0, true);
                }
            }
        }
    }

    /// A page that is almost white: five 2×2 dots and one 20 mm horizontal line.
    pub fn nearly_blank(width: u32, height: u32, x_dpi: u16, y_dpi: u16, seed: u64) -> Bitmap {
        let mut b = Bitmap::new(width, height, x_dpi, y_dpi);
        let mut rng = Rng(seed ^ 0x000B_1A4C);
        for _ in 0..5 {
            let x = rng.below(width.saturating_sub(2).max(1));
            let y = rng.below(height.saturating_sub(2).max(1));
            b.fill_rect(x, y, 2, 2, true);
        }
        let len = mm(20.0, x_dpi);
        let x = rng.below(width.saturating_sub(len).max(1));
        let y = rng.below(height.max(1));
        b.fill_rect(x, y, len, 1, true);
        b
    }

    /// Seven-segment masks for 0–9, bits a..g = 0..6 (a top, b top right, c bottom right,
    /// d bottom, e bottom left, f top left, g middle).
    const SEGMENTS: [u8; 10] = [
        0b011_1111, 0b000_0110, 0b101_1011, 0b100_1111, 0b110_0110, 0b110_1101, 0b111_1101,
        0b000_0111, 0b111_1111, 0b110_1111,
    ];

    /// A page showing `n` in large seven-segment digits (a third of the page high, centred in
    /// the upper half) inside a thin frame, so page order is visible at a glance.
    pub fn numbered_page(n: u32, width: u32, height: u32, x_dpi: u16, y_dpi: u16) -> Bitmap {
        let mut b = Bitmap::new(width, height, x_dpi, y_dpi);
        frame(&mut b, 2);
        let digits: Vec<usize> = n
            .to_string()
            .bytes()
            .map(|c| usize::from(c - b'0'))
            .collect();
        let dh = (height / 3).max(7);
        // Physical width 0.55 × physical height.
        let ratio = f32::from(x_dpi.max(1)) / f32::from(y_dpi.max(1));
        let mut dw = ((dh as f32) * 0.55 * ratio) as u32;
        let gap_w = |dw: u32| dw / 3;
        let count = digits.len() as u32;
        let avail = width.saturating_sub(8);
        while dw > 3 && count * dw + count.saturating_sub(1) * gap_w(dw) > avail {
            dw -= 1;
        }
        let dw = dw.max(3);
        let total = count * dw + count.saturating_sub(1) * gap_w(dw);
        let tx = ((dh as f32) * 0.12 * ratio).max(1.0) as u32; // vertical stroke width
        let ty = ((dh as f32) * 0.12).max(1.0) as u32 / 2 + 1; // horizontal stroke height
        let mut x = width.saturating_sub(total) / 2;
        let y = (height / 4).saturating_sub(dh / 2).max(3);
        for d in digits {
            let m = SEGMENTS.get(d).copied().unwrap_or(0);
            let half = dh / 2;
            let seg = |i: u32| (m >> i) & 1 == 1;
            if seg(0) {
                b.fill_rect(x, y, dw, ty, true);
            }
            if seg(1) {
                b.fill_rect(x + dw - tx.min(dw), y, tx, half, true);
            }
            if seg(2) {
                b.fill_rect(x + dw - tx.min(dw), y + half, tx, dh - half, true);
            }
            if seg(3) {
                b.fill_rect(x, y + dh - ty.min(dh), dw, ty, true);
            }
            if seg(4) {
                b.fill_rect(x, y + half, tx, dh - half, true);
            }
            if seg(5) {
                b.fill_rect(x, y, tx, half, true);
            }
            if seg(6) {
                b.fill_rect(x, y + half - ty / 2, dw, ty, true);
            }
            x += dw + gap_w(dw);
        }
        b
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::charts::{dense_chart, nearly_blank, numbered_page};
    use super::*;

    /// Directory of the golden CCITT files made by libtiff's `tiffcp` (see `regen.sh` there).
    pub(crate) fn fixture(name: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/fax")
            .join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// The uncompressed sources of the fixtures: (file stem, pages).
    pub(crate) fn fixture_sources() -> Vec<(&'static str, Vec<Bitmap>)> {
        vec![
            (
                "two_pages_98",
                vec![
                    dense_chart(1728, 240, 204, 98, 1),
                    numbered_page(2, 1728, 200, 204, 98),
                ],
            ),
            ("fine_196", vec![dense_chart(1728, 300, 204, 196, 2)]),
        ]
    }

    /// Writes the fixture sources to `$CODA_FIXTURE_OUT`; run by `fixtures/fax/regen.sh`.
    #[test]
    #[ignore = "fixture generator, run by fixtures/fax/regen.sh"]
    fn write_fixture_sources() {
        let dir = std::env::var("CODA_FIXTURE_OUT").expect("CODA_FIXTURE_OUT");
        for (stem, pages) in fixture_sources() {
            let path = std::path::Path::new(&dir).join(format!("{stem}.tif"));
            std::fs::write(path, write_bilevel_uncompressed(&pages)).unwrap();
        }
    }

    /// Hand-built little-endian TIFF for malformed inputs: header, `blob` at offset 8, then the
    /// IFDs in order, chained. Entries are `(tag, type, count, inline value)`.
    fn craft(ifds: &[Vec<(u16, u16, u32, u32)>], blob: &[u8]) -> Vec<u8> {
        let mut out = b"II*\0".to_vec();
        let first = 8 + blob.len() + blob.len() % 2;
        out.extend_from_slice(&(first as u32).to_le_bytes());
        out.extend_from_slice(blob);
        out.resize(first, 0);
        for (i, entries) in ifds.iter().enumerate() {
            out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
            for &(t, ty, count, v) in entries {
                out.extend_from_slice(&t.to_le_bytes());
                out.extend_from_slice(&ty.to_le_bytes());
                out.extend_from_slice(&count.to_le_bytes());
                out.extend_from_slice(&v.to_le_bytes());
            }
            let next = if i + 1 < ifds.len() { out.len() + 4 } else { 0 };
            out.extend_from_slice(&(next as u32).to_le_bytes());
        }
        out
    }

    const S: u16 = field_type::SHORT;
    const L: u16 = field_type::LONG;

    /// Entries of a minimal uncompressed page whose single strip is `len` bytes at `offset`.
    fn basic(width: u32, height: u32, offset: u32, len: u32) -> Vec<(u16, u16, u32, u32)> {
        vec![
            (tag::IMAGE_WIDTH, L, 1, width),
            (tag::IMAGE_LENGTH, L, 1, height),
            (tag::COMPRESSION, S, 1, 1),
            (tag::PHOTOMETRIC, S, 1, 0),
            (tag::STRIP_OFFSETS, L, 1, offset),
            (tag::ROWS_PER_STRIP, L, 1, height),
            (tag::STRIP_BYTE_COUNTS, L, 1, len),
        ]
    }

    fn with(
        mut e: Vec<(u16, u16, u32, u32)>,
        t: u16,
        ty: u16,
        count: u32,
        v: u32,
    ) -> Vec<(u16, u16, u32, u32)> {
        e.retain(|x| x.0 != t);
        e.push((t, ty, count, v));
        e.sort_by_key(|x| x.0);
        e
    }

    fn sample_pages() -> Vec<Bitmap> {
        vec![
            dense_chart(1728, 500, 204, 98, 11),
            nearly_blank(1728, 400, 204, 196, 12),
            numbered_page(3, 2048, 300, 200, 200),
        ]
    }

    #[test]
    fn tiff6_sec2_roundtrip_multipage_uncompressed() {
        let src = sample_pages();
        let file = write_bilevel_uncompressed(&src);
        let pages = read_pages(&file).unwrap();
        assert_eq!(pages.len(), 3);
        for (i, (p, b)) in pages.iter().zip(&src).enumerate() {
            assert_eq!((p.width, p.height), (b.width, b.height));
            assert_eq!((p.x_dpi, p.y_dpi), (f32::from(b.x_dpi), f32::from(b.y_dpi)));
            assert!(p.resolution_from_file);
            assert_eq!(p.compression, Compression::None);
            assert_eq!(p.photometric, Photometric::WhiteIsZero);
            assert!(!p.fill_order_lsb);
            assert_eq!(p.strips.len(), 1);
            assert_eq!(p.rows_per_strip, b.height);
            assert_eq!(p.page_number, Some((i as u16, 3)));
            assert_eq!(&p.to_bitmap().unwrap(), b);
        }
    }

    #[test]
    fn tiff6_sec2_big_endian_file_reads_like_little_endian() {
        let b = dense_chart(100, 40, 204, 98, 5);
        for order in [ByteOrder::Little, ByteOrder::Big] {
            let mut w = IfdWriter::new(order);
            w.page(
                &[
                    (tag::IMAGE_WIDTH, Value::Short(vec![100])),
                    (tag::IMAGE_LENGTH, Value::Long(vec![40])),
                    (tag::STRIP_OFFSETS, Value::StripOffsets),
                    (tag::ROWS_PER_STRIP, Value::Short(vec![40])),
                    (tag::STRIP_BYTE_COUNTS, Value::StripByteCounts),
                    (tag::X_RESOLUTION, Value::Rational(vec![(408, 2)])),
                    (tag::Y_RESOLUTION, Value::Rational(vec![(98, 1)])),
                ],
                &[&b.rows],
            )
            .unwrap();
            let pages = read_pages(&w.finish()).unwrap();
            assert_eq!(pages[0].to_bitmap().unwrap(), b);
            assert_eq!((pages[0].x_dpi, pages[0].y_dpi), (204.0, 98.0));
        }
    }

    #[test]
    fn tiff6_sec8_fill_order_2_data_is_bit_reversed() {
        let b = dense_chart(64, 30, 204, 98, 6);
        let reversed: Vec<u8> = b.rows.iter().map(|x| x.reverse_bits()).collect();
        let len = reversed.len() as u32;
        let file = craft(
            &[with(basic(64, 30, 8, len), tag::FILL_ORDER, S, 1, 2)],
            &reversed,
        );
        let pages = read_pages(&file).unwrap();
        assert!(pages[0].fill_order_lsb);
        assert_eq!(pages[0].strips[0].data, b.rows);
        assert_eq!(pages[0].to_bitmap().unwrap().rows, b.rows);
    }

    #[test]
    fn tiff6_sec8_resolution_unit_centimetre_is_converted() {
        let mut blob = vec![0u8; 8];
        // Rationals at 16 and 24: 80/1 and 154/2 pixels per centimetre.
        for v in [80u32, 1, 154, 2] {
            blob.extend_from_slice(&v.to_le_bytes());
        }
        let e = basic(8, 8, 8, 8);
        let e = with(e, tag::X_RESOLUTION, field_type::RATIONAL, 1, 16);
        let e = with(e, tag::Y_RESOLUTION, field_type::RATIONAL, 1, 24);
        let e = with(e, tag::RESOLUTION_UNIT, S, 1, 3);
        let p = &read_pages(&craft(&[e], &blob)).unwrap()[0];
        assert!(p.resolution_from_file);
        assert!((p.x_dpi - 203.2).abs() < 1e-3, "{}", p.x_dpi);
        assert!((p.y_dpi - 195.58).abs() < 1e-3, "{}", p.y_dpi);
    }

    #[test]
    fn tiff6_sec8_missing_or_zero_resolution_uses_fallback() {
        let mut blob = vec![0u8; 8];
        blob.extend_from_slice(&[204, 0, 0, 0, 0, 0, 0, 0]); // 204/0 at offset 16
        let no_res = craft(&[basic(8, 8, 8, 8)], &blob);
        let zero_den = craft(
            &[with(
                with(
                    basic(8, 8, 8, 8),
                    tag::X_RESOLUTION,
                    field_type::RATIONAL,
                    1,
                    16,
                ),
                tag::Y_RESOLUTION,
                field_type::RATIONAL,
                1,
                16,
            )],
            &blob,
        );
        for f in [no_res, zero_den] {
            let p = &read_pages(&f).unwrap()[0];
            assert!(!p.resolution_from_file);
            assert_eq!((p.x_dpi, p.y_dpi), FALLBACK_DPI);
        }
    }

    #[test]
    fn tiff6_sec8_black_is_zero_is_inverted_in_bitmap() {
        let b = dense_chart(24, 10, 204, 98, 7);
        let inverted: Vec<u8> = b.rows.iter().map(|x| !x).collect();
        let file = craft(
            &[with(basic(24, 10, 8, 30), tag::PHOTOMETRIC, S, 1, 1)],
            &inverted,
        );
        let p = &read_pages(&file).unwrap()[0];
        assert_eq!(p.photometric, Photometric::BlackIsZero);
        assert_eq!(p.to_bitmap().unwrap().rows, b.rows);
    }

    #[test]
    fn tiff6_sec3_several_strips_per_page() {
        let b = dense_chart(40, 30, 204, 98, 8);
        let stride = b.stride();
        let chunks: Vec<&[u8]> = b.rows.chunks(7 * stride).collect();
        let mut w = IfdWriter::new(ByteOrder::Little);
        w.page(
            &[
                (tag::IMAGE_WIDTH, Value::Long(vec![40])),
                (tag::IMAGE_LENGTH, Value::Long(vec![30])),
                (tag::STRIP_OFFSETS, Value::StripOffsets),
                (tag::ROWS_PER_STRIP, Value::Long(vec![7])),
                (tag::STRIP_BYTE_COUNTS, Value::StripByteCounts),
            ],
            &chunks,
        )
        .unwrap();
        let p = &read_pages(&w.finish()).unwrap()[0];
        assert_eq!(p.strips.len(), 5);
        assert_eq!(p.rows_per_strip, 7);
        let rows: Vec<(u32, u32)> = p.strips.iter().map(|s| (s.first_row, s.rows)).collect();
        assert_eq!(rows, [(0, 7), (7, 7), (14, 7), (21, 7), (28, 2)]);
        assert_eq!(p.to_bitmap().unwrap().rows, b.rows);
    }

    #[test]
    fn tiff6_sec8_reduced_resolution_subfiles_are_skipped() {
        let blob = [0xFFu8; 16];
        let thumb = with(basic(8, 8, 8, 8), tag::NEW_SUBFILE_TYPE, L, 1, 1);
        let page = basic(16, 8, 8, 16);
        let pages = read_pages(&craft(&[thumb.clone(), page], &blob)).unwrap();
        assert_eq!(pages.len(), 1);
        assert_eq!(pages[0].width, 16);
        assert_eq!(read_pages(&craft(&[thumb], &blob)), Err(TiffError::NoPages));
    }

    #[test]
    fn tiff6_sec2_bad_headers_are_rejected() {
        assert_eq!(read_pages(b""), Err(TiffError::BadHeader));
        assert_eq!(read_pages(b"II*"), Err(TiffError::BadHeader));
        assert_eq!(read_pages(b"XX*\0\x08\0\0\0"), Err(TiffError::BadHeader));
        assert_eq!(read_pages(b"II+\0\x08\0\0\0"), Err(TiffError::BigTiff));
        assert_eq!(read_pages(b"MM\0\x2a\0\0\0\0"), Err(TiffError::NoPages));
        assert_eq!(
            read_pages(b"II*\0\xF0\0\0\0"),
            Err(TiffError::IfdOutOfBounds { offset: 0xF0 })
        );
    }

    #[test]
    fn tiff6_sec2_cyclic_ifd_chain_is_an_error() {
        let blob = [0u8; 8];
        // One IFD whose next pointer is itself.
        let mut one = craft(&[basic(8, 8, 8, 8)], &blob);
        let first = u32::from_le_bytes(one[4..8].try_into().unwrap());
        let n = one.len();
        one[n - 4..].copy_from_slice(&first.to_le_bytes());
        assert_eq!(read_pages(&one), Err(TiffError::IfdLoop { offset: first }));
        // Two IFDs pointing at each other.
        let mut two = craft(&[basic(8, 4, 8, 4), basic(8, 4, 12, 4)], &blob);
        let n = two.len();
        two[n - 4..].copy_from_slice(&first.to_le_bytes());
        assert_eq!(read_pages(&two), Err(TiffError::IfdLoop { offset: first }));
    }

    #[test]
    fn tiff6_sec2_ifd_chain_is_capped() {
        let thumb = vec![(tag::NEW_SUBFILE_TYPE, L, 1, 1)];
        let many = craft(&vec![thumb; MAX_PAGES + 1], &[]);
        assert_eq!(read_pages(&many), Err(TiffError::TooManyPages));
    }

    #[test]
    fn tiff6_sec8_dimension_limits() {
        let blob = [0u8; 8];
        for (w, h) in [
            (0, 8),
            (8, 0),
            (MAX_WIDTH + 1, 1),
            (1, MAX_HEIGHT + 1),
            (u32::MAX, u32::MAX),
        ] {
            assert_eq!(
                read_pages(&craft(&[basic(w, h, 8, 8)], &blob)),
                Err(TiffError::BadDimensions {
                    page: 1,
                    width: w,
                    height: h
                })
            );
        }
    }

    #[test]
    fn tiff6_sec3_strips_must_lie_inside_the_file() {
        let blob = [0u8; 8];
        let err = |o, l| TiffError::StripOutOfBounds {
            page: 1,
            strip: 0,
            offset: o,
            len: l,
        };
        assert_eq!(
            read_pages(&craft(&[basic(8, 8, 8, 1000)], &blob)),
            Err(err(8, 1000))
        );
        // Offset + length overflows 32 bits.
        assert_eq!(
            read_pages(&craft(&[basic(8, 8, 0xFFFF_FFF0, 0x100)], &blob)),
            Err(err(0xFFFF_FFF0, 0x100))
        );
        // Uncompressed strip shorter than its rows.
        assert_eq!(
            read_pages(&craft(&[basic(8, 8, 8, 7)], &blob)),
            Err(TiffError::StripTooShort {
                page: 1,
                strip: 0,
                len: 7,
                needed: 8
            })
        );
        // A compressed strip may not be empty.
        let g4 = with(basic(8, 8, 8, 0), tag::COMPRESSION, S, 1, 4);
        assert!(matches!(
            read_pages(&craft(&[g4], &blob)),
            Err(TiffError::StripTooShort { needed: 1, .. })
        ));
        // Strip array itself (5 LONGs at offset 0x7000) outside the file.
        let e = with(basic(8, 40, 8, 8), tag::ROWS_PER_STRIP, L, 1, 8);
        let e = with(e, tag::STRIP_OFFSETS, L, 5, 0x7000);
        let e = with(e, tag::STRIP_BYTE_COUNTS, L, 5, 0x7000);
        assert_eq!(
            read_pages(&craft(&[e], &blob)),
            Err(TiffError::TagOutOfBounds {
                page: 1,
                tag: tag::STRIP_OFFSETS
            })
        );
    }

    #[test]
    fn tiff6_sec3_strip_count_must_match_rows_per_strip() {
        let blob = [0u8; 8];
        let e = with(basic(8, 30, 8, 8), tag::ROWS_PER_STRIP, L, 1, 10);
        assert_eq!(
            read_pages(&craft(&[e], &blob)),
            Err(TiffError::StripCount {
                page: 1,
                offsets: 1,
                counts: 1,
                expected: 3
            })
        );
    }

    #[test]
    fn tiff6_strips_may_not_claim_more_than_the_file() {
        // Many pages sharing one strip that fills most of the file.
        let blob = vec![0u8; 4000];
        let page = basic(8, 8, 8, 4000);
        assert_eq!(
            read_pages(&craft(&[page.clone(), page], &blob)),
            Err(TiffError::StripsExceedFile)
        );
    }

    #[test]
    fn tiff6_unsupported_fields_are_rejected() {
        let blob = [0u8; 8];
        let cases = [
            (tag::COMPRESSION, 5, "compression"),
            (tag::BITS_PER_SAMPLE, 8, "BitsPerSample"),
            (tag::SAMPLES_PER_PIXEL, 3, "SamplesPerPixel"),
            (tag::PHOTOMETRIC, 2, "PhotometricInterpretation"),
            (tag::FILL_ORDER, 3, "FillOrder"),
        ];
        for (t, v, what) in cases {
            let got = read_pages(&craft(&[with(basic(8, 8, 8, 8), t, S, 1, v)], &blob));
            match got {
                Err(TiffError::UnsupportedCompression { compression, .. }) => {
                    assert_eq!((what, compression), ("compression", v))
                }
                Err(TiffError::Unsupported { field, value, .. }) => {
                    assert_eq!((field, value), (what, v))
                }
                other => panic!("{what}: {other:?}"),
            }
        }
        let missing: Vec<_> = basic(8, 8, 8, 8)
            .into_iter()
            .filter(|e| e.0 != tag::STRIP_OFFSETS)
            .collect();
        assert_eq!(
            read_pages(&craft(&[missing], &blob)),
            Err(TiffError::MissingTag {
                page: 1,
                tag: tag::STRIP_OFFSETS
            })
        );
        // Width given as an ASCII string.
        let e = with(
            basic(8, 8, 8, 8),
            tag::IMAGE_WIDTH,
            field_type::ASCII,
            2,
            0x38,
        );
        assert!(matches!(
            read_pages(&craft(&[e], &blob)),
            Err(TiffError::BadTag {
                tag: tag::IMAGE_WIDTH,
                ..
            })
        ));
    }

    /// Every value `read_pages` returns respects the documented invariants.
    fn check_invariants(input: &[u8], pages: &[FaxPage]) {
        let total: usize = pages.iter().map(FaxPage::data_len).sum();
        assert!(total <= input.len());
        for p in pages {
            assert!((1..=MAX_WIDTH).contains(&p.width));
            assert!((1..=MAX_HEIGHT).contains(&p.height));
            assert!((1.0..=10_000.0).contains(&p.x_dpi) && (1.0..=10_000.0).contains(&p.y_dpi));
            let mut row = 0;
            for s in &p.strips {
                assert_eq!(s.first_row, row);
                assert!(s.rows > 0 && !s.data.is_empty());
                row += s.rows;
            }
            assert_eq!(row, p.height);
            if p.compression == Compression::None {
                assert_eq!(p.to_bitmap().unwrap().height, p.height);
            }
        }
    }

    #[test]
    fn tiff6_truncated_files_are_errors_not_panics() {
        let file = write_bilevel_uncompressed(&[
            dense_chart(64, 20, 204, 98, 1),
            numbered_page(7, 64, 20, 204, 98),
        ]);
        assert!(read_pages(&file).is_ok());
        // The last page's strip ends the file, so every proper prefix is broken.
        for n in 0..file.len() {
            assert!(read_pages(&file[..n]).is_err(), "prefix of {n} bytes");
        }
    }

    #[test]
    fn tiff6_garbage_and_bit_flips_never_panic() {
        let mut seed = 0x1234_5678_9ABC_DEF0u64;
        let mut rand = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for i in 0..3000 {
            let len = (rand() % 300) as usize;
            let mut buf: Vec<u8> = (0..len).map(|_| rand() as u8).collect();
            if i % 2 == 0 && len >= 8 {
                buf[..4].copy_from_slice(if i % 4 == 0 { b"II*\0" } else { b"MM\0*" });
                // Point the first IFD inside the buffer.
                let off = (rand() % len as u64) as u32;
                let b = if i % 4 == 0 {
                    off.to_le_bytes()
                } else {
                    off.to_be_bytes()
                };
                buf[4..8].copy_from_slice(&b);
            }
            if let Ok(p) = read_pages(&buf) {
                check_invariants(&buf, &p);
            }
        }
        let valid = write_bilevel_uncompressed(&[dense_chart(40, 12, 204, 98, 2)]);
        for _ in 0..3000 {
            let mut buf = valid.clone();
            for _ in 0..1 + rand() % 4 {
                let i = (rand() % buf.len() as u64) as usize;
                buf[i] ^= 1 << (rand() % 8);
            }
            if let Ok(p) = read_pages(&buf) {
                check_invariants(&buf, &p);
            }
        }
    }

    #[test]
    fn tiff6_writer_rejects_empty_input() {
        assert_eq!(try_write_bilevel_uncompressed(&[]), Err(TiffError::NoPages));
    }

    #[test]
    fn tiff6_writer_pads_short_rows_and_clears_row_padding() {
        let mut b = Bitmap::new(10, 3, 204, 98);
        b.rows = vec![0xFF; 2]; // too short, and bits beyond x = 9 set
        let p = &read_pages(&write_bilevel_uncompressed(&[b])).unwrap()[0];
        assert_eq!(p.strips[0].data, [0xFF, 0xC0, 0, 0, 0, 0]);
    }

    /// The golden files written by libtiff's `tiffcp` from [`fixture_sources`].
    #[test]
    fn tiff6_libtiff_ccitt_fixtures_are_read_as_written() {
        let two = read_pages(&fixture("g4_lsb_2page.tif")).unwrap();
        assert_eq!(two.len(), 2);
        for (p, (h, n)) in two.iter().zip([(240, 0), (200, 1)]) {
            assert_eq!((p.width, p.height), (1728, h));
            assert_eq!((p.x_dpi, p.y_dpi), (204.0, 98.0));
            assert_eq!(p.compression, Compression::G4);
            assert!(p.fill_order_lsb);
            assert_eq!(p.photometric, Photometric::WhiteIsZero);
            assert_eq!(p.strips.len(), 1);
            assert_eq!(p.page_number, Some((n, 2)));
        }
        let mm = &read_pages(&fixture("g4_mm_strips.tif")).unwrap()[0];
        assert_eq!((mm.width, mm.height, mm.y_dpi), (1728, 300, 196.0));
        assert_eq!(
            (mm.compression, mm.fill_order_lsb),
            (Compression::G4, false)
        );
        assert_eq!((mm.rows_per_strip, mm.strips.len()), (64, 5));
        let g3 = &read_pages(&fixture("g3_2d_fill_lsb.tif")).unwrap()[0];
        assert_eq!((g3.compression, g3.fill_order_lsb), (Compression::G3, true));
        assert_eq!((g3.rows_per_strip, g3.strips.len()), (37, 9));
        assert_eq!(g3.t4_options, T4_OPTION_2D | T4_OPTION_FILL_BITS);
        let g3_1d = read_pages(&fixture("g3_1d.tif")).unwrap();
        assert_eq!(g3_1d.len(), 2);
        assert_eq!(
            (g3_1d[0].compression, g3_1d[0].t4_options),
            (Compression::G3, 0)
        );
    }

    /// libtiff itself accepts what we write: `tiffinfo -D` decodes every page without a warning.
    #[test]
    #[ignore = "needs libtiff-tools (tiffinfo)"]
    fn tiff6_libtiff_tiffinfo_accepts_written_file() {
        let path = std::env::temp_dir().join(format!("coda-tiffinfo-{}.tif", std::process::id()));
        std::fs::write(&path, write_bilevel_uncompressed(&sample_pages())).unwrap();
        let out = std::process::Command::new("tiffinfo")
            .arg("-D")
            .arg(&path)
            .output()
            .expect("tiffinfo");
        let _ = std::fs::remove_file(&path);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(stderr.trim().is_empty(), "libtiff warnings: {stderr}");
        assert_eq!(stdout.matches("Image Width:").count(), 3, "{stdout}");
        assert!(
            stdout.contains("Image Width: 1728 Image Length: 500"),
            "{stdout}"
        );
        assert!(
            stdout.contains("Resolution: 204, 98 pixels/inch"),
            "{stdout}"
        );
        assert!(
            stdout.contains("Resolution: 200, 200 pixels/inch"),
            "{stdout}"
        );
        assert!(stdout.contains("Page Number: 2-3"), "{stdout}");
    }

    #[test]
    fn charts_are_deterministic_and_plausible() {
        let a = dense_chart(1728, 1100, 204, 98, 7);
        assert_eq!(a, dense_chart(1728, 1100, 204, 98, 7));
        assert_ne!(a, dense_chart(1728, 1100, 204, 98, 8));
        let ratio = a.count_black() as f64 / (1728.0 * 1100.0);
        assert!((0.05..0.6).contains(&ratio), "dense ratio {ratio}");
        let blank = nearly_blank(1728, 2200, 204, 196, 1);
        assert!((1..1000).contains(&blank.count_black()));
        assert_eq!(blank, nearly_blank(1728, 2200, 204, 196, 1));
        let one = numbered_page(1, 1728, 1100, 204, 98);
        let eight = numbered_page(8, 1728, 1100, 204, 98);
        assert!(eight.count_black() > one.count_black());
        assert_ne!(
            numbered_page(12, 1728, 1100, 204, 98),
            numbered_page(21, 1728, 1100, 204, 98)
        );
        // Degenerate sizes must not panic.
        for w in 0..12 {
            for h in 0..12 {
                let _ = dense_chart(w, h, 204, 98, 1);
                let _ = nearly_blank(w, h, 204, 98, 1);
                let _ = numbered_page(1234567890, w, h, 204, 98);
            }
        }
    }

    #[test]
    fn bitmap_set_get_and_bounds() {
        let mut b = Bitmap::new(10, 2, 204, 98);
        assert_eq!(b.rows.len(), 4);
        b.set(9, 1, true);
        b.set(10, 1, true); // ignored
        b.set(0, 2, true); // ignored
        assert!(b.get(9, 1) && !b.get(8, 1) && !b.get(10, 1));
        assert_eq!(b.rows, [0, 0, 0, 0x40]);
        b.set(9, 1, false);
        assert_eq!(b.count_black(), 0);
        let other = Bitmap::new(10, 3, 204, 98);
        assert_eq!(b.mismatches(&other), None);
    }
}
