//! A rough guess at whether a meme speaks figuratively (sarcasm, irony, exaggeration),
//! used only to filter the Errors pane. It is a heuristic over surface cues, labelled as
//! such in the interface: it neither claims to detect sarcasm nor feeds any metric.
//!
//! When a sample has figurative reasoning, the reasoning decides: RESTORE's records all
//! carry one, so flagging every sample that has reasoning would flag them all. Otherwise
//! the caption's cues decide. The matched words are kept, so the detail view shows why.

use crate::events::Misclassified;

/// Lower-case stems in a reasoning that say the meme is sarcastic, ironic or exaggerated.
/// On RESTORE's validation file they flag 73 of the 359 records.
const REASONING_CUES: &[&str] =
    &["sarcas", "irony", "ironic", "satir", "exaggerat", "self-deprecat", "dark humor"];

/// Lower-case phrases typical of ironic or hyperbolic meme captions.
const TEXT_CUES: &[&str] = &[
    "sarcas",
    "irony",
    "ironic",
    "me when",
    "nobody:",
    "no one:",
    "when you",
    "when u",
    "be like",
    "totally fine",
    "i'm fine",
    "im fine",
    "this is fine",
    "literally",
    "lol",
    "lmao",
    "haha",
    "yeah right",
    "oh great",
    "thanks a lot",
];

/// Emoji that usually mark a joke.
const EMOJI_CUES: &[char] = &['😂', '🤣', '💀', '🙃', '😭', '😅', '🤡'];

/// Why a sample is flagged: where the cues were found and the words that matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FigurativeCues {
    /// `"reasoning"` or `"text"`.
    pub source: &'static str,
    pub matched: Vec<String>,
}

/// The word (letters, digits, `-`, `'`) of `text` around the byte range `at..at + len`.
fn word_around(text: &str, at: usize, len: usize) -> String {
    let is_word = |c: char| c.is_alphanumeric() || c == '-' || c == '\'';
    let start = text[..at].rfind(|c: char| !is_word(c)).map_or(0, |i| i + 1);
    let end = text[at + len..].find(|c: char| !is_word(c)).map_or(text.len(), |i| at + len + i);
    let word = text[start..end].trim();
    if word.is_empty() {
        text[at..at + len].to_string()
    } else {
        word.to_string()
    }
}

/// The distinct words of `text` (lower-cased) that contain one of `cues`, in cue order.
fn matched_words(lower: &str, cues: &[&str]) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    for cue in cues {
        for (at, _) in lower.match_indices(cue) {
            let word = if cue.contains(' ') || cue.ends_with(':') {
                cue.to_string()
            } else {
                word_around(lower, at, cue.len())
            };
            if !words.contains(&word) {
                words.push(word);
            }
        }
    }
    words
}

/// The cues that flag `sample`, or `None` when it does not look figurative.
pub fn figurative_cues(sample: &Misclassified) -> Option<FigurativeCues> {
    if let Some(reasoning) = sample.reasoning.as_deref().filter(|r| !r.trim().is_empty()) {
        let matched = matched_words(&reasoning.to_lowercase(), REASONING_CUES);
        return (!matched.is_empty()).then_some(FigurativeCues { source: "reasoning", matched });
    }
    let text = sample.text.to_lowercase();
    let mut matched = matched_words(&text, TEXT_CUES);
    // The sarcasm tag only as a word of its own, not inside paths or "w/some".
    if text.split_whitespace().any(|word| word == "/s") {
        matched.push("/s".to_string());
    }
    matched.extend(text.chars().filter(|c| EMOJI_CUES.contains(c)).map(String::from));
    matched.dedup();
    (!matched.is_empty()).then_some(FigurativeCues { source: "text", matched })
}

/// True when the reasoning (if any) or else the text has a cue of irony.
pub fn looks_figurative(sample: &Misclassified) -> bool {
    figurative_cues(sample).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(text: &str, reasoning: Option<&str>) -> Misclassified {
        Misclassified {
            sample_id: "s".into(),
            text: text.into(),
            reasoning: reasoning.map(Into::into),
            image: None,
            truth: vec![0],
            predicted: vec![1],
            probabilities: vec![0.3, 0.7],
        }
    }

    #[test]
    fn text_cues_mark_figurative_without_reasoning() {
        assert!(looks_figurative(&sample("Me when the alarm rings at 6", None)));
        assert!(looks_figurative(&sample("Nobody: ... my brain at 3am", None)));
        assert!(looks_figurative(&sample("great, another monday 😂", None)));
        assert!(looks_figurative(&sample("love my job /s", None)));
        assert!(!looks_figurative(&sample("I cannot sleep at night", None)));
        assert!(!looks_figurative(&sample("see pics/sunset", None)));
        assert!(!looks_figurative(&sample("I cannot sleep at night", Some("  "))));
    }

    #[test]
    fn reasoning_decides_by_what_it_says_and_names_the_words() {
        let plain = sample("me when lol", Some("The cat stands for dread."));
        assert!(!looks_figurative(&plain), "reasoning without irony outweighs text cues");
        let ironic = sample(
            "plain text",
            Some("The caption is Ironically cheerful; its sarcasm hides exhaustion."),
        );
        let cues = figurative_cues(&ironic).unwrap();
        assert_eq!(cues.source, "reasoning");
        assert_eq!(cues.matched, ["sarcasm", "ironically"]);
        let cues = figurative_cues(&sample("me when it's literally fine lol", None)).unwrap();
        assert_eq!((cues.source, cues.matched.len()), ("text", 3), "{cues:?}");
    }

    /// RESTORE's validation records all carry reasoning; about a fifth of them say the
    /// meme is sarcastic, ironic or exaggerated.
    #[test]
    fn restore_validation_is_flagged_by_its_reasoning_not_wholesale() {
        use crate::data::{Dataset, DatasetFormat};
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/data/restore/val.json");
        if !path.exists() {
            println!("skipped: {} is not on this machine", path.display());
            return;
        }
        let data = Dataset::load(&path, DatasetFormat::Restore).unwrap();
        let flagged = data
            .samples
            .iter()
            .filter(|s| {
                let reasoning = Some(s.reasoning.joined()).filter(|r| !r.is_empty());
                looks_figurative(&sample(&s.ocr_text, reasoning.as_deref()))
            })
            .count();
        assert_eq!(data.samples.len(), 359);
        assert!((60..=80).contains(&flagged), "{flagged} of 359 flagged");
    }
}
