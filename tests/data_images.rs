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
