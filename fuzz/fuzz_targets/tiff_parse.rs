//! Fuzz target: the fax TIFF reader must never panic, everything it returns must respect its
//! documented limits, and accepted pages must convert to PDF.
#![no_main]

use coda::fax::pdf::{pages_to_pdf, PdfMeta};
use coda::fax::tiff::{read_pages, Compression, MAX_HEIGHT, MAX_WIDTH};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(pages) = read_pages(data) else {
        return;
    };
    assert!(!pages.is_empty());
    let total: usize = pages.iter().map(|p| p.data_len()).sum();
    assert!(
        total <= data.len(),
        "strips may not claim more than the file"
    );
    for p in &pages {
        assert!((1..=MAX_WIDTH).contains(&p.width));
        assert!((1..=MAX_HEIGHT).contains(&p.height));
        let mut row = 0;
        for s in &p.strips {
            assert_eq!(s.first_row, row);
            row += s.rows;
        }
        assert_eq!(row, p.height);
        if p.compression == Compression::None {
            let bitmap = p.to_bitmap().expect("uncompressed page converts");
            assert_eq!(bitmap.rows.len(), p.stride() * p.height as usize);
        }
    }
    pages_to_pdf(&pages, &PdfMeta::default()).expect("accepted pages convert to PDF");
});
