//! The lexical stream: hashed word 1–2-gram counts of each text, the sparse bag-of-n-grams
//! that a TF-IDF + logistic-regression baseline learns from, for the model's lexical expert.
//!
//! N-grams are hashed into a fixed number of buckets (the "hashing trick") rather than
//! looked up in a vocabulary fitted on the training split: the features of a file then
//! depend on that file alone, so training, cross-validation folds and `memescope eval` need
//! no fitted state, and nothing of the validation text leaks into training. Counts are
//! sublinear (`1 + ln c`) and each row is L2-normalised, as scikit-learn's
//! `TfidfVectorizer(sublinear_tf=True)` does; the IDF weighting is left to the learned
//! weights.

use candle_core::{Device, Result, Tensor};

/// Sparse rows: per text, `(bucket, value)` pairs with distinct, ascending buckets.
#[derive(Debug, Clone, PartialEq)]
pub struct LexicalFeatures {
    pub buckets: usize,
    pub rows: Vec<Vec<(u32, f32)>>,
}

impl LexicalFeatures {
    pub fn of_texts(texts: &[String], buckets: usize) -> Self {
        Self { buckets, rows: texts.iter().map(|t| hashed_ngrams(t, buckets)).collect() }
    }

    /// The rows at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> Self {
        Self {
            buckets: self.buckets,
            rows: indices.iter().map(|&i| self.rows[i].clone()).collect(),
        }
    }

    /// The rows at `indices` as a dense `(indices, buckets)` f32 tensor.
    pub fn dense(&self, indices: &[usize], device: &Device) -> Result<Tensor> {
        let mut values = vec![0f32; indices.len() * self.buckets];
        for (row, &i) in indices.iter().enumerate() {
            for &(bucket, value) in &self.rows[i] {
                values[row * self.buckets + bucket as usize] = value;
            }
        }
        Tensor::from_vec(values, (indices.len(), self.buckets), device)
    }
}

/// Lower-cased alphanumeric words; everything else separates words.
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// The normalised, sublinear hashed counts of the text's words and word pairs.
pub fn hashed_ngrams(text: &str, buckets: usize) -> Vec<(u32, f32)> {
    assert!(buckets > 0, "the lexical stream needs at least one bucket");
    let words = words(text);
    let mut counts = std::collections::BTreeMap::<u32, f32>::new();
    let mut add = |gram: &str| {
        *counts.entry((fnv1a(gram.as_bytes()) % buckets as u64) as u32).or_default() += 1.0;
    };
    for (i, word) in words.iter().enumerate() {
        add(word);
        if let Some(next) = words.get(i + 1) {
            // The separator cannot occur inside a word, so "a b" never collides with a word.
            add(&format!("{word} {next}"));
        }
    }
    let mut row: Vec<(u32, f32)> = counts.into_iter().map(|(b, c)| (b, 1.0 + c.ln())).collect();
    let norm = row.iter().map(|(_, v)| v * v).sum::<f32>().sqrt();
    if norm > 0.0 {
        row.iter_mut().for_each(|(_, v)| *v /= norm);
    }
    row
}

/// 64-bit FNV-1a: stable across runs and platforms (unlike std's randomised hasher), so
/// the cached features and a trained model's weights keep meaning the same n-grams.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(0xcbf2_9ce4_8422_2325, |hash, &b| (hash ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_lowercased_and_split_on_punctuation() {
        assert_eq!(words("I CAN'T sleep...again!"), vec!["i", "can", "t", "sleep", "again"]);
        assert!(words(" ... ").is_empty());
    }

    #[test]
    fn rows_count_unigrams_and_bigrams_sublinearly_and_are_unit_length() {
        let buckets = 1 << 20; // large enough that these few n-grams do not collide
        let row = hashed_ngrams("worry worry worry", buckets);
        // "worry" three times, "worry worry" twice.
        let mut values: Vec<f32> = row.iter().map(|(_, v)| *v).collect();
        values.sort_by(f32::total_cmp);
        let (pair, word) = (1.0 + 2f32.ln(), 1.0 + 3f32.ln());
        let norm = (pair * pair + word * word).sqrt();
        assert_eq!(values.len(), 2);
        assert!((values[0] - pair / norm).abs() < 1e-6 && (values[1] - word / norm).abs() < 1e-6);
        assert!(row.windows(2).all(|w| w[0].0 < w[1].0), "ascending buckets");
        assert_eq!(hashed_ngrams("Worry, WORRY worry", buckets), row, "case and punctuation");
        assert!(hashed_ngrams("", buckets).is_empty());
        assert_ne!(hashed_ngrams("sleep worry", buckets), hashed_ngrams("worry sleep", buckets));
    }

    #[test]
    fn dense_rows_follow_the_requested_order() -> Result<()> {
        let features =
            LexicalFeatures::of_texts(&["panic".to_string(), String::new(), "doom".into()], 8);
        let dense = features.dense(&[2, 1, 0], &Device::Cpu)?.to_vec2::<f32>()?;
        assert_eq!(dense.len(), 3);
        assert_eq!(dense[1], vec![0.0; 8], "an empty text has no n-grams");
        let nonzero = |row: &Vec<f32>| row.iter().filter(|v| **v != 0.0).count();
        assert_eq!((nonzero(&dense[0]), nonzero(&dense[2])), (1, 1));
        assert_eq!(
            features.select(&[2, 0]).rows,
            vec![features.rows[2].clone(), features.rows[0].clone()]
        );
        Ok(())
    }
}
