//! The lexical stream: hashed word 1–2-gram counts of each text (and, optionally, counts
//! of the character n-grams inside its words), the sparse bag-of-n-grams that a TF-IDF +
//! logistic-regression baseline learns from, for the model's lexical expert.
//!
//! Character n-grams (scikit-learn's `analyzer="char_wb"`: each word padded with a space on
//! both sides) see through what OCR does to meme text — split, merged and misread words,
//! inflections — that whole-word n-grams miss. Words and characters are normalised as two
//! separate blocks, as two stacked vectorizers would be, so neither drowns out the other.
//!
//! N-grams are hashed into a fixed number of buckets (the "hashing trick") rather than
//! looked up in a vocabulary fitted on the training split: the features of a file then
//! depend on that file alone, so training, cross-validation folds and `memescope eval` need
//! no fitted state, and nothing of the validation text leaks into training. Counts are
//! sublinear (`1 + ln c`) and each row is L2-normalised, as scikit-learn's
//! `TfidfVectorizer(sublinear_tf=True)` does; the IDF weighting is left to the learned
//! weights.

use candle_core::{Device, Result, Tensor};

use crate::config::ModelConfig;

/// Sparse rows: per text, `(bucket, value)` pairs with distinct, ascending buckets.
#[derive(Debug, Clone, PartialEq)]
pub struct LexicalFeatures {
    pub buckets: usize,
    pub rows: Vec<Vec<(u32, f32)>>,
}

/// What the lexical stream counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LexicalSpec {
    pub buckets: usize,
    /// Shortest and longest character n-gram within words; `None` for words alone.
    pub char_ngrams: Option<(usize, usize)>,
}

impl LexicalSpec {
    /// What the model config asks the lexical stream to count (the config has been validated).
    pub fn of(model: &ModelConfig) -> Self {
        Self {
            buckets: model.lexical_buckets,
            char_ngrams: match model.lexical_char_ngrams.as_slice() {
                [shortest, longest] => Some((*shortest, *longest)),
                _ => None,
            },
        }
    }
}

impl LexicalFeatures {
    pub fn of_texts(texts: &[String], spec: LexicalSpec) -> Self {
        Self { buckets: spec.buckets, rows: texts.iter().map(|t| hashed_ngrams(t, spec)).collect() }
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

/// The normalised, sublinear hashed counts of the text's words and word pairs, plus (as a
/// second block of the same weight) those of the character n-grams of its words.
pub fn hashed_ngrams(text: &str, spec: LexicalSpec) -> Vec<(u32, f32)> {
    assert!(spec.buckets > 0, "the lexical stream needs at least one bucket");
    let words = words(text);
    let mut word_grams = Counts::new(spec.buckets, b'w');
    for (i, word) in words.iter().enumerate() {
        word_grams.add(word);
        if let Some(next) = words.get(i + 1) {
            // The separator cannot occur inside a word, so "a b" never collides with a word.
            word_grams.add(&format!("{word} {next}"));
        }
    }
    let mut row = word_grams.normalised();
    if let Some((shortest, longest)) = spec.char_ngrams {
        let mut char_grams = Counts::new(spec.buckets, b'c');
        for word in &words {
            let padded: Vec<char> =
                std::iter::once(' ').chain(word.chars()).chain(std::iter::once(' ')).collect();
            for n in shortest.max(1)..=longest.min(padded.len()) {
                for gram in padded.windows(n) {
                    char_grams.add(&gram.iter().collect::<String>());
                }
            }
        }
        row = merge(row, char_grams.normalised());
    }
    row
}

/// Hashed n-gram counts of one kind; `kind` is hashed first, so that the word "ab" and
/// the character bigram "ab" land in unrelated buckets.
struct Counts {
    buckets: usize,
    kind: u8,
    counts: std::collections::BTreeMap<u32, f32>,
}

impl Counts {
    fn new(buckets: usize, kind: u8) -> Self {
        Self { buckets, kind, counts: Default::default() }
    }

    fn add(&mut self, gram: &str) {
        let hash = fnv1a(std::iter::once(self.kind).chain(gram.bytes()));
        *self.counts.entry((hash % self.buckets as u64) as u32).or_default() += 1.0;
    }

    /// Sublinear counts (`1 + ln c`), L2-normalised; ascending buckets.
    fn normalised(self) -> Vec<(u32, f32)> {
        let mut row: Vec<(u32, f32)> =
            self.counts.into_iter().map(|(b, c)| (b, 1.0 + c.ln())).collect();
        let norm = row.iter().map(|(_, v)| v * v).sum::<f32>().sqrt();
        if norm > 0.0 {
            row.iter_mut().for_each(|(_, v)| *v /= norm);
        }
        row
    }
}

/// The sum of two sparse rows with ascending buckets, itself ascending.
fn merge(a: Vec<(u32, f32)>, b: Vec<(u32, f32)>) -> Vec<(u32, f32)> {
    let mut sum = std::collections::BTreeMap::<u32, f32>::new();
    for (bucket, value) in a.into_iter().chain(b) {
        *sum.entry(bucket).or_default() += value;
    }
    sum.into_iter().collect()
}

/// 64-bit FNV-1a: stable across runs and platforms (unlike std's randomised hasher), so
/// the cached features and a trained model's weights keep meaning the same n-grams.
fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes
        .into_iter()
        .fold(0xcbf2_9ce4_8422_2325, |hash, b| (hash ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
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
    fn the_spec_follows_the_model_config() {
        let mut model = ModelConfig { lexical_buckets: 64, ..ModelConfig::default() };
        assert_eq!(LexicalSpec::of(&model), LexicalSpec { buckets: 64, char_ngrams: None });
        model.lexical_char_ngrams = vec![2, 5];
        assert_eq!(LexicalSpec::of(&model).char_ngrams, Some((2, 5)));
    }

    /// Large enough that these few n-grams do not collide.
    const WORDS: LexicalSpec = LexicalSpec { buckets: 1 << 20, char_ngrams: None };

    #[test]
    fn rows_count_unigrams_and_bigrams_sublinearly_and_are_unit_length() {
        let row = hashed_ngrams("worry worry worry", WORDS);
        // "worry" three times, "worry worry" twice.
        let mut values: Vec<f32> = row.iter().map(|(_, v)| *v).collect();
        values.sort_by(f32::total_cmp);
        let (pair, word) = (1.0 + 2f32.ln(), 1.0 + 3f32.ln());
        let norm = (pair * pair + word * word).sqrt();
        assert_eq!(values.len(), 2);
        assert!((values[0] - pair / norm).abs() < 1e-6 && (values[1] - word / norm).abs() < 1e-6);
        assert!(row.windows(2).all(|w| w[0].0 < w[1].0), "ascending buckets");
        assert_eq!(hashed_ngrams("Worry, WORRY worry", WORDS), row, "case and punctuation");
        assert!(hashed_ngrams("", WORDS).is_empty());
        assert_ne!(hashed_ngrams("sleep worry", WORDS), hashed_ngrams("worry sleep", WORDS));
    }

    #[test]
    fn character_ngrams_are_a_second_unit_block_within_padded_words() {
        let spec = LexicalSpec { char_ngrams: Some((2, 3)), ..WORDS };
        let row = hashed_ngrams("Ab", spec);
        // Words: "ab" (no pair). Characters of " ab ": " a", "ab", "b " and " ab", "ab ".
        assert_eq!(row.len(), 1 + 5);
        let squares: f32 = row.iter().map(|(_, v)| v * v).sum();
        assert!((squares - 2.0).abs() < 1e-5, "two unit blocks: {squares}");
        assert!(row.windows(2).all(|w| w[0].0 < w[1].0), "ascending buckets");
        // A misread word still shares most of its character n-grams with the right one.
        let shared = |a: &str, b: &str| {
            let (a, b) = (hashed_ngrams(a, spec), hashed_ngrams(b, spec));
            a.iter().filter(|(bucket, _)| b.iter().any(|(other, _)| other == bucket)).count()
        };
        // Bigrams " a" … "et" and trigrams " an" … "iet"; not the misread ending.
        assert_eq!(shared("anxiety", "anxietv"), 6 + 5);
        assert_eq!(shared("anxiety", "sleep"), 0);
        assert_eq!(hashed_ngrams("ab", WORDS).len(), 1, "off by default");
    }

    #[test]
    fn dense_rows_follow_the_requested_order() -> Result<()> {
        let spec = LexicalSpec { buckets: 8, char_ngrams: None };
        let features =
            LexicalFeatures::of_texts(&["panic".to_string(), String::new(), "doom".into()], spec);
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
