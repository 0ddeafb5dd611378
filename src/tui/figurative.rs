//! A rough guess at whether a meme speaks figuratively (sarcasm, irony, exaggeration),
//! used only to filter the Errors pane. It is a heuristic over surface cues, labelled as
//! such in the interface: it neither claims to detect sarcasm nor feeds any metric.

use crate::events::Misclassified;

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

/// True when the sample carries figurative reasoning or its text has a cue of irony.
pub fn looks_figurative(sample: &Misclassified) -> bool {
    if sample.reasoning.as_deref().is_some_and(|r| !r.trim().is_empty()) {
        return true;
    }
    let text = sample.text.to_lowercase();
    TEXT_CUES.iter().any(|cue| text.contains(cue))
        // The sarcasm tag only as a word of its own, not inside paths or "w/some".
        || text.split_whitespace().any(|word| word == "/s")
        || text.chars().any(|c| EMOJI_CUES.contains(&c))
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
    fn cues_and_reasoning_mark_figurative() {
        assert!(looks_figurative(&sample("Me when the alarm rings at 6", None)));
        assert!(looks_figurative(&sample("Nobody: ... my brain at 3am", None)));
        assert!(looks_figurative(&sample("great, another monday 😂", None)));
        assert!(looks_figurative(&sample("plain text", Some("the cat stands for dread"))));
        assert!(looks_figurative(&sample("love my job /s", None)));
        assert!(!looks_figurative(&sample("I cannot sleep at night", None)));
        assert!(!looks_figurative(&sample("see pics/sunset", None)));
        assert!(!looks_figurative(&sample("I cannot sleep at night", Some("  "))));
    }
}
