//! Finding, checking and loading meme images.

use std::path::Path;

use memescope::data::{resolve_images, ImageStatus, Reasoning, Sample};

fn sample(id: &str) -> Sample {
    Sample {
        sample_id: id.to_string(),
        ocr_text: String::new(),
        labels: vec![0],
        reasoning: Reasoning::default(),
    }
}

fn write_png(path: &Path, width: u32, height: u32) {
    image::RgbImage::from_pixel(width, height, image::Rgb([200, 30, 90])).save(path).unwrap();
}

#[test]
fn images_are_found_missing_or_undecodable() {
    let dir = tempfile::tempdir().unwrap();
    write_png(&dir.path().join("good.png"), 4, 3);
    // An upper-case extension, and PNG content behind a `.jpg` name.
    write_png(&dir.path().join("shouting.PNG"), 2, 2);
    let png_bytes = std::fs::read(dir.path().join("good.png")).unwrap();
    std::fs::write(dir.path().join("misnamed.jpg"), &png_bytes).unwrap();
    std::fs::write(dir.path().join("broken.jpg"), b"\xFF\xD8\xFF\xE0 not really a jpeg").unwrap();
    // Not an image extension: must not be taken for sample "notes".
    std::fs::write(dir.path().join("notes.txt"), b"hello").unwrap();

    let samples: Vec<Sample> =
        ["good", "missing", "broken", "shouting", "misnamed", "notes"].map(sample).to_vec();
    let report = resolve_images(dir.path(), &samples);

    assert_eq!(report.statuses[0], ImageStatus::Found(dir.path().join("good.png")));
    assert_eq!(report.statuses[1], ImageStatus::Missing);
    assert!(
        matches!(
            &report.statuses[2],
            ImageStatus::Undecodable { path, .. } if path.ends_with("broken.jpg")
        ),
        "{:?}",
        report.statuses[2]
    );
    assert_eq!(report.statuses[3], ImageStatus::Found(dir.path().join("shouting.PNG")));
    assert_eq!(report.statuses[4], ImageStatus::Found(dir.path().join("misnamed.jpg")));
    assert_eq!(report.statuses[5], ImageStatus::Missing);
    assert_eq!((report.masked(), report.missing(), report.undecodable()), (3, 2, 1));

    let summary = report.summary();
    println!("summary: {summary}");
    assert!(
        summary.starts_with("3 of 6 images masked: 2 missing, 1 undecodable (first: "),
        "{summary}"
    );
    assert!(summary.contains("broken.jpg"), "{summary}");

    let good = report.load(0).expect("the good image loads");
    assert_eq!((good.width(), good.height()), (4, 3));
    assert!(report.load(1).is_none() && report.load(2).is_none() && report.load(99).is_none());
}

#[test]
fn a_decodable_alternative_wins_over_a_broken_preferred_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("meme.jpg"), b"garbage").unwrap();
    write_png(&dir.path().join("meme.png"), 1, 1);
    let report = resolve_images(dir.path(), &[sample("meme")]);
    assert_eq!(report.statuses, vec![ImageStatus::Found(dir.path().join("meme.png"))]);
    assert_eq!(report.summary(), "1 of 1 images found, none masked");
}

#[test]
fn a_missing_folder_masks_every_image() {
    let report = resolve_images(Path::new("/nonexistent/images"), &[sample("a"), sample("b")]);
    assert_eq!(report.statuses, vec![ImageStatus::Missing, ImageStatus::Missing]);
    assert_eq!(report.summary(), "2 of 2 images masked: 2 missing, 0 undecodable");
}

#[test]
fn images_with_a_valid_header_and_truncated_data_are_masked_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    // Real PNG and JPEG files of some size, cut after their headers and part of the data.
    let noisy = image::RgbImage::from_fn(64, 48, |x, y| {
        image::Rgb([(x * 37 % 251) as u8, (y * 53 % 241) as u8, ((x ^ y) * 11 % 239) as u8])
    });
    noisy.save(dir.path().join("whole.png")).unwrap();
    noisy.save(dir.path().join("whole.jpg")).unwrap();
    for (whole, cut, keep) in [("whole.png", "cut-png.png", 0.5), ("whole.jpg", "cut-jpg.jpg", 0.3)]
    {
        let bytes = std::fs::read(dir.path().join(whole)).unwrap();
        std::fs::write(dir.path().join(cut), &bytes[..(bytes.len() as f64 * keep) as usize])
            .unwrap();
    }
    // A PNG header (signature + IHDR) claiming 60000×60000 pixels and nothing after it.
    let mut huge = Vec::from(*b"\x89PNG\r\n\x1a\n");
    let mut ihdr = Vec::from(*b"IHDR");
    ihdr.extend_from_slice(&60000u32.to_be_bytes());
    ihdr.extend_from_slice(&60000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    huge.extend_from_slice(&13u32.to_be_bytes());
    huge.extend_from_slice(&ihdr);
    huge.extend_from_slice(&crc32(&ihdr).to_be_bytes());
    std::fs::write(dir.path().join("huge.png"), &huge).unwrap();

    let samples: Vec<Sample> = ["whole", "cut-png", "cut-jpg", "huge"].map(sample).to_vec();
    let report = resolve_images(dir.path(), &samples);
    assert!(matches!(report.statuses[0], ImageStatus::Found(_)), "{:?}", report.statuses[0]);
    for (i, name) in [(1, "cut-png.png"), (3, "huge.png")] {
        assert!(
            matches!(&report.statuses[i], ImageStatus::Undecodable { path, .. } if path.ends_with(name)),
            "{:?}",
            report.statuses[i]
        );
        assert!(report.load(i).is_none());
    }
    // JPEG decoders may fill a truncated scan with grey; either way nothing crashes, and what
    // is reported found also loads.
    match &report.statuses[2] {
        ImageStatus::Found(_) => assert!(report.load(2).is_some()),
        ImageStatus::Undecodable { .. } => assert!(report.load(2).is_none()),
        ImageStatus::Missing => panic!("the cut JPEG exists"),
    }
    let broken = report.undecodable();
    assert!((2..=3).contains(&broken), "{:?}", report.statuses);
    assert_eq!(report.masked(), broken);
    assert!(report.summary().contains(&format!("{broken} undecodable")), "{}", report.summary());
}

/// The CRC-32 PNG chunks end with (over type and data).
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}
