//! The grounded prompt: rules, numbered sources, question. The one place the wording lives.

use kb_core::{ChatMessage, Hit};

/// The rules the chat model answers under.
pub const SYSTEM_PROMPT: &str = "\
You answer employees' questions about company policy using only the numbered sources you are given.
Rules:
- Use only facts stated in the sources. Do not use outside knowledge and do not guess.
- After every sentence that uses a source, cite it as [n], where n is the source number. Cite only numbers that appear in the sources.
- If the sources do not contain the answer, say plainly that the knowledge base does not cover it, and do not cite anything.
- Be brief: answer in at most a few sentences, in the language of the question.";

/// What is said when nothing relevant was retrieved.
pub const NOT_FOUND_ANSWER: &str = "I could not find this in the knowledge base. \
The company documents I can search do not seem to cover it; please ask HR or the policy owner.";

/// The sources block: one numbered entry per hit, with title, path and section.
pub fn format_sources(hits: &[Hit]) -> String {
    let mut out = String::new();
    for (i, hit) in hits.iter().enumerate() {
        let p = &hit.payload;
        out.push_str(&format!("[{}] {} ({})", i + 1, p.title, p.doc_id));
        if !p.heading_path.is_empty() {
            out.push_str(&format!(" — {}", p.heading_path.join(" > ")));
        }
        out.push('\n');
        out.push_str(p.text.trim());
        out.push_str("\n\n");
    }
    out
}

/// The messages sent to the chat model.
pub fn build_messages(question: &str, hits: &[Hit]) -> Vec<ChatMessage> {
    vec![
        ChatMessage::system(SYSTEM_PROMPT),
        ChatMessage::user(format!(
            "Sources:\n\n{}Question: {}",
            format_sources(hits),
            question.trim()
        )),
    ]
}

/// Messages as one text, for snapshot tests of prompts.
#[cfg(test)]
pub(crate) fn transcript(messages: &[ChatMessage]) -> String {
    messages
        .iter()
        .map(|m| format!("--- {:?}\n{}", m.role, m.content))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use kb_core::{ChunkPayload, DocumentId};

    fn hit(doc: &str, title: &str, headings: &[&str], text: &str) -> Hit {
        Hit {
            id: uuid::Uuid::nil(),
            score: 0.8,
            cosine: 0.8,
            payload: ChunkPayload {
                doc_id: DocumentId::new(doc),
                doc_hash: "h".into(),
                ordinal: 0,
                title: title.into(),
                path: format!("/handbook/{doc}"),
                heading_path: headings.iter().map(|h| h.to_string()).collect(),
                text: text.into(),
                byte_start: 0,
                byte_end: text.len(),
                groups: vec!["all".into()],
                meta: kb_core::DocumentMeta::default(),
            },
        }
    }

    #[test]
    fn prompt_template_is_pinned() {
        let hits = vec![
            hit(
                "leave-policy.md",
                "Leave Policy",
                &["Leave Policy", "Vacation"],
                "New employees get 25 vacation days per calendar year.",
            ),
            hit(
                "remote-work.md",
                "Remote Work",
                &[],
                "Up to 3 days per week from home.",
            ),
        ];

        let messages = build_messages("  How many vacation days do I get? ", &hits);

        insta::assert_snapshot!(transcript(&messages));
    }
}
