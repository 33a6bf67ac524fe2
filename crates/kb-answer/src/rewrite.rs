//! Follow-up questions: before retrieval, the last question of a conversation ("and for
//! part-timers?") is rewritten into one that stands alone ("How many vacation days do
//! part-time employees get?"), by the chat model with a small prompt, or without one by
//! putting the previous question and the follow-up together.

use kb_core::{ChatMessage, Role};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The rules of the rewrite (a template file of its own, pinned by a snapshot test).
pub const SYSTEM_PROMPT: &str = include_str!("../prompts/rewrite.txt");

/// Latest prior messages the rewrite prompt shows the model: a follow-up refers to what was
/// said just before it.
pub const PROMPT_HISTORY_MESSAGES: usize = 6;

/// Longest prior message, in characters, quoted in the rewrite prompt (answers are long and
/// their start names the topic).
pub const PROMPT_MESSAGE_CHARS: usize = 600;

/// Who said a prior message of the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TurnRole {
    User,
    Assistant,
}

/// A prior message of the conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Turn {
    pub role: TurnRole,
    pub content: String,
}

impl Turn {
    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: TurnRole::User,
            content: content.into(),
        }
    }

    pub fn assistant(content: impl Into<String>) -> Self {
        Self {
            role: TurnRole::Assistant,
            content: content.into(),
        }
    }
}

/// How the standalone question was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RewriteMethod {
    /// The chat model rewrote the follow-up.
    Model,
    /// No usable model rewrite (no chat model is configured, or its reply was unusable): the
    /// previous user question and the follow-up, together.
    Concatenated,
}

/// The standalone question a follow-up was rewritten into; retrieval and the answer use it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Rewrite {
    pub question: String,
    pub method: RewriteMethod,
    /// Why the fallback was used, when it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The messages that ask the chat model for a standalone question.
pub fn build_messages(history: &[Turn], question: &str) -> Vec<ChatMessage> {
    let recent = &history[history.len().saturating_sub(PROMPT_HISTORY_MESSAGES)..];
    let mut conversation = String::new();
    for turn in recent {
        let who = match turn.role {
            TurnRole::User => "User",
            TurnRole::Assistant => "Assistant",
        };
        conversation.push_str(&format!(
            "{who}: {}\n",
            shorten(&one_line(&turn.content), PROMPT_MESSAGE_CHARS)
        ));
    }
    vec![
        ChatMessage::system(SYSTEM_PROMPT.trim_end()),
        ChatMessage {
            role: Role::User,
            content: format!(
                "Conversation:\n{conversation}\nLast question: {}\n\nStandalone question:",
                one_line(question)
            ),
        },
    ]
}

/// The standalone question in a model's reply: its first non-empty line without a label or
/// quotes; `None` when that is empty or longer than `max_chars`.
pub fn parse_reply(reply: &str, max_chars: usize) -> Option<String> {
    let line = reply.lines().map(str::trim).find(|l| !l.is_empty())?;
    let line = strip_label(line);
    let line = line
        .trim_matches(|c: char| matches!(c, '"' | '\'' | '“' | '”' | '«' | '»' | '`'))
        .trim();
    let chars = line.chars().count();
    (chars > 0 && chars <= max_chars).then(|| line.to_owned())
}

/// The fallback: the last prior user question and the follow-up, together, whole words of the
/// prior question dropped from its start to fit `max_chars`. `None` when no user spoke before.
pub fn concatenate(history: &[Turn], question: &str, max_chars: usize) -> Option<String> {
    let previous = history
        .iter()
        .rev()
        .find(|t| t.role == TurnRole::User && !t.content.trim().is_empty())?;
    let question = one_line(question);
    let room = max_chars.saturating_sub(question.chars().count() + 1);
    // Whole words from the end of the previous question: its topic is usually there.
    let mut kept: Vec<&str> = Vec::new();
    let mut len = 0;
    for word in previous.content.split_whitespace().rev() {
        let add = word.chars().count() + usize::from(!kept.is_empty());
        if len + add > room {
            break;
        }
        len += add;
        kept.push(word);
    }
    kept.reverse();
    Some(format!("{} {question}", kept.join(" ")).trim().to_owned())
}

fn strip_label(line: &str) -> &str {
    const LABELS: [&str; 3] = ["standalone question:", "question:", "rewritten question:"];
    let lower = line.to_lowercase();
    LABELS
        .iter()
        .find(|l| lower.starts_with(*l))
        .map(|l| line[l.len()..].trim_start())
        .unwrap_or(line)
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn shorten(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max_chars).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrite_prompt_is_pinned() {
        let history = vec![
            Turn::user("How many vacation days do new employees get?"),
            Turn::assistant(
                "New employees get 25 vacation days per calendar year [1].\n\nSources:\n[1] Leave Policy",
            ),
        ];

        let messages = build_messages(&history, "  and for part-timers? ");

        insta::assert_snapshot!(crate::prompt::transcript(&messages));
    }

    #[test]
    fn the_prompt_shows_only_the_latest_messages_and_shortens_long_ones() {
        let mut history: Vec<Turn> = (0..10).map(|i| Turn::user(format!("q{i}"))).collect();
        history.push(Turn::assistant("x".repeat(PROMPT_MESSAGE_CHARS + 50)));

        let messages = build_messages(&history, "next?");

        let prompt = &messages[1].content;
        assert!(!prompt.contains("q4"), "{prompt}");
        assert!(prompt.contains("q5"), "{prompt}");
        assert!(prompt.contains(&format!("{}…", "x".repeat(PROMPT_MESSAGE_CHARS))));
        assert!(!prompt.contains(&"x".repeat(PROMPT_MESSAGE_CHARS + 1)));
    }

    #[test]
    fn replies_lose_labels_quotes_and_later_lines() {
        assert_eq!(
            parse_reply(
                "\n Standalone question: \"How many vacation days do part-timers get?\"\nBecause…",
                200
            )
            .as_deref(),
            Some("How many vacation days do part-timers get?")
        );
    }

    #[test]
    fn empty_or_overlong_replies_are_refused() {
        assert_eq!(parse_reply("  \n \"\" \n", 200), None);
        assert_eq!(parse_reply(&"a".repeat(201), 200), None);
    }

    #[test]
    fn the_fallback_joins_the_previous_user_question_and_the_follow_up() {
        let history = vec![
            Turn::user("How many vacation days do new employees get?"),
            Turn::assistant("25 days [1]."),
        ];

        assert_eq!(
            concatenate(&history, "and for part-timers?", 200).as_deref(),
            Some("How many vacation days do new employees get? and for part-timers?")
        );
    }

    #[test]
    fn the_fallback_keeps_the_follow_up_whole_and_cuts_the_previous_question_from_the_start() {
        let history = vec![Turn::user("one two three four")];

        assert_eq!(
            concatenate(&history, "five?", 16).as_deref(),
            Some("three four five?")
        );
        assert_eq!(
            concatenate(&history, "five?", 15).as_deref(),
            Some("four five?")
        );
    }

    #[test]
    fn without_a_prior_user_question_there_is_nothing_to_join() {
        assert_eq!(
            concatenate(&[Turn::assistant("Hello!")], "vacation?", 200),
            None
        );
    }
}
