//! What a caller may see of where a document lies. Readers get a document's title, the
//! location of a passage in it and, where `answer.source_urls` configures one, a link to it in
//! its source system; never its path on the server's disk, which tells how the server is laid
//! out (user names, mount points, folder names of other teams). Admins keep the path.
//!
//! Every response that cites a document goes through here: `/v1/ask` and its stream, the
//! OpenAI-compatible facade's `sources`, `/v1/search` and the chunk route.

use kb_answer::{Answer, AskEvent, Citation};
use kb_core::{PUBLIC_GROUP, Principal};

/// Whether `caller` may see server paths.
pub fn sees_paths(caller: &Principal) -> bool {
    caller.is_admin()
}

/// The server path, for callers that may see it.
pub fn path_for(caller: &Principal, path: String) -> Option<String> {
    sees_paths(caller).then_some(path)
}

/// `citations` as `caller` may see them.
pub fn citations(caller: &Principal, citations: Vec<Citation>) -> Vec<Citation> {
    if sees_paths(caller) {
        citations
    } else {
        citations.into_iter().map(Citation::without_path).collect()
    }
}

/// `answer` as `caller` may see it.
pub fn answer(caller: &Principal, mut answer: Answer) -> Answer {
    answer.citations = citations(caller, std::mem::take(&mut answer.citations));
    answer
}

/// A streamed answer's event as `caller` may see it.
pub fn event(caller: &Principal, event: AskEvent) -> AskEvent {
    match event {
        AskEvent::Sources {
            sources,
            retrieval,
            rewrite,
        } => AskEvent::Sources {
            sources: citations(caller, sources),
            retrieval,
            rewrite,
        },
        AskEvent::Done { answer: done } => AskEvent::Done {
            answer: answer(caller, done),
        },
        delta @ AskEvent::Delta { .. } => delta,
    }
}

/// Whether `caller` may read a document readable by `groups`: the rule the index applies to
/// searches (an admin reads everything; a reader, documents of its groups and of
/// [`PUBLIC_GROUP`]).
pub fn may_read(caller: &Principal, groups: &[String]) -> bool {
    match caller.readable_groups() {
        None => true,
        Some(own) => groups
            .iter()
            .any(|g| g == PUBLIC_GROUP || own.iter().any(|o| o == g)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kb_core::AccessRole;

    fn reader(groups: &[&str]) -> Principal {
        Principal {
            role: AccessRole::Reader,
            groups: groups.iter().map(|g| g.to_string()).collect(),
            key_id: Some("k".into()),
            name: "reader".into(),
        }
    }

    fn citation() -> Citation {
        serde_json::from_value(serde_json::json!({
            "n": 1, "document": "hr/leave.md", "title": "Leave", "path": "/srv/kb/hr/leave.md",
            "heading_path": [], "chunk": 0, "byte_range": [0, 4], "snippet": "text", "score": 0.5
        }))
        .unwrap()
    }

    #[test]
    fn readers_never_get_the_server_path_and_admins_do() {
        let admin = Principal::local_admin();

        let for_reader = citations(&reader(&["hr"]), vec![citation()]);
        let for_admin = citations(&admin, vec![citation()]);

        assert_eq!(for_reader[0].path, None);
        let json = serde_json::to_string(&for_reader).unwrap();
        assert!(!json.contains("/srv/kb"), "{json}");
        assert_eq!(for_admin[0].path.as_deref(), Some("/srv/kb/hr/leave.md"));
        assert_eq!(path_for(&reader(&[]), "/srv/a".into()), None);
    }

    #[test]
    fn a_reader_reads_its_groups_and_public_documents_only() {
        let hr = reader(&["hr"]);

        assert!(may_read(&hr, &["hr".into()]));
        assert!(may_read(&hr, &["finance".into(), "hr".into()]));
        assert!(may_read(&hr, &[PUBLIC_GROUP.into()]));
        assert!(!may_read(&hr, &["finance".into()]));
        assert!(!may_read(&hr, &[]));
        assert!(!may_read(&reader(&[]), &["hr".into()]));
        assert!(may_read(&Principal::local_admin(), &["finance".into()]));
    }
}
