//! CLIP image preprocessing: shortest side to 224 (bicubic), centre crop, CLIP mean/std.
//!
//! Mirrors Hugging Face's `CLIPImageProcessor`: convert to RGB, resize so the shortest side
//! is `size` (the longest becomes `int(size * long / short)`) with bicubic filtering in
//! 8-bit, crop the centre `size x size` (offsets rounded down), scale to [0, 1], normalise
//! per channel, lay out channels first.

use anyhow::Result;
use candle_core::{Device, Tensor};
use image::imageops::FilterType;
use image::{DynamicImage, RgbImage};

/// OpenAI's constants, verbatim as in `CLIPImageProcessor` (more digits than f32 holds).
#[allow(clippy::excessive_precision)]
pub const CLIP_MEAN: [f32; 3] = [0.48145466, 0.4578275, 0.40821073];
#[allow(clippy::excessive_precision)]
pub const CLIP_STD: [f32; 3] = [0.26862954, 0.26130258, 0.27577711];

/// The `(width, height)` after resizing the shortest side to `size`.
pub fn resized_dims(width: u32, height: u32, size: u32) -> (u32, u32) {
    let (short, long) = if width <= height { (width, height) } else { (height, width) };
    // Truncation, as `int(...)` in transformers' get_resize_output_image_size.
    let scaled_long = (size as f64 * long as f64 / short.max(1) as f64) as u32;
    if width <= height {
        (size, scaled_long)
    } else {
        (scaled_long, size)
    }
}

/// One image as `3 * size * size` normalised floats, channel-major.
pub fn preprocess(image: &DynamicImage, size: u32) -> Vec<f32> {
    let rgb = image.to_rgb8();
    let (width, height) = resized_dims(rgb.width(), rgb.height(), size);
    let resized: RgbImage = if (width, height) == rgb.dimensions() {
        rgb
    } else {
        image::imageops::resize(&rgb, width, height, FilterType::CatmullRom)
    };
    let left = (width - size) / 2;
    let top = (height - size) / 2;
    let plane = (size * size) as usize;
    let mut out = vec![0f32; 3 * plane];
    for y in 0..size {
        for x in 0..size {
            let pixel = resized.get_pixel(left + x, top + y);
            let offset = (y * size + x) as usize;
            for channel in 0..3 {
                let value = pixel[channel] as f32 / 255.0;
                out[channel * plane + offset] = (value - CLIP_MEAN[channel]) / CLIP_STD[channel];
            }
        }
    }
    out
}

/// A batch of images as a `(batch, 3, size, size)` tensor.
pub fn preprocess_batch(images: &[&DynamicImage], size: u32, device: &Device) -> Result<Tensor> {
    let mut data = Vec::with_capacity(images.len() * 3 * (size * size) as usize);
    for image in images {
        data.extend(preprocess(image, size));
    }
    let side = size as usize;
    Ok(Tensor::from_vec(data, (images.len(), 3, side, side), device)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    fn normalised(value: u8, channel: usize) -> f32 {
        (value as f32 / 255.0 - CLIP_MEAN[channel]) / CLIP_STD[channel]
    }

    #[test]
    fn shortest_side_becomes_size_and_the_long_side_is_truncated() {
        assert_eq!(resized_dims(640, 480, 224), (298, 224)); // 224 * 640 / 480 = 298.67
        assert_eq!(resized_dims(480, 640, 224), (224, 298));
        assert_eq!(resized_dims(100, 100, 224), (224, 224));
    }

    /// A 6x4 image needs no resize for size 4; the crop keeps columns 1..5. Pixel (0, 0) of
    /// the output is input pixel (1, 0): R=10 → (10/255 - 0.48145466) / 0.26862954
    /// = -1.646278, G=200 → (200/255 - 0.4578275) / 0.26130258 = 1.249457,
    /// B=255 → (1 - 0.40821073) / 0.27577711 = 2.145897.
    #[test]
    fn centre_crop_and_normalisation_of_one_pixel() {
        let mut image = RgbImage::from_pixel(6, 4, Rgb([0, 0, 0]));
        image.put_pixel(1, 0, Rgb([10, 200, 255]));
        image.put_pixel(0, 0, Rgb([255, 255, 255])); // cropped away
        let out = preprocess(&DynamicImage::ImageRgb8(image), 4);
        assert_eq!(out.len(), 3 * 16);
        let expected = [-1.646278f32, 1.249457, 2.145897];
        for (channel, want) in expected.iter().enumerate() {
            let got = out[channel * 16];
            assert!((got - want).abs() < 1e-5, "channel {channel}: {got} vs {want}");
        }
        // Output pixel (1, 0) is input (2, 0): black.
        assert!((out[1] - normalised(0, 0)).abs() < 1e-6);
    }

    /// Resizing a uniform image keeps it uniform (bicubic weights sum to one); the output
    /// is the crop of the resized image, in channel-major order.
    #[test]
    fn uniform_image_of_any_shape_gives_uniform_planes() -> Result<()> {
        let image = DynamicImage::ImageRgb8(RgbImage::from_pixel(50, 20, Rgb([30, 120, 250])));
        let batch = preprocess_batch(&[&image, &image], 8, &Device::Cpu)?;
        assert_eq!(batch.dims(), &[2, 3, 8, 8]);
        let flat = batch.flatten_all()?.to_vec1::<f32>()?;
        for (index, value) in flat.iter().enumerate() {
            let channel = (index / 64) % 3;
            let want = normalised([30, 120, 250][channel], channel);
            assert!((value - want).abs() < 1e-5, "value {index}: {value} vs {want}");
        }
        Ok(())
    }

    /// A wide image whose left half is black and right half white: the centre crop must
    /// straddle the boundary exactly in the middle.
    #[test]
    fn crop_is_centred_horizontally() {
        let mut image = RgbImage::from_pixel(40, 10, Rgb([0, 0, 0]));
        for y in 0..10 {
            for x in 20..40 {
                image.put_pixel(x, y, Rgb([255, 255, 255]));
            }
        }
        // 40x10 -> 40x10 for size 10 (no resize); crop columns 15..25.
        let out = preprocess(&DynamicImage::ImageRgb8(image), 10);
        let red = &out[..100];
        assert!((red[4] - normalised(0, 0)).abs() < 1e-6, "column 19 is black");
        assert!((red[5] - normalised(255, 0)).abs() < 1e-6, "column 20 is white");
    }
}
