//! Caps on request fields whose cost grows with their length, below what the body size limit
//! alone allows: a search filter naming 80,000 documents fits in `server.max_body_bytes` and
//! costs about half a second of index time per request.

use crate::error::ApiError;

/// The most values `filter.documents` or `filter.tags` may list.
pub const MAX_FILTER_VALUES: usize = 1_000;

/// Refuse a search filter that lists more than [`MAX_FILTER_VALUES`] document ids or tags, with
/// a 400 that names the field and the cap.
pub fn check_filter_lists(documents: &[String], tags: &[String]) -> Result<(), ApiError> {
    for (field, count) in [
        ("filter.documents", documents.len()),
        ("filter.tags", tags.len()),
    ] {
        if count > MAX_FILTER_VALUES {
            return Err(ApiError::InvalidRequest(format!(
                "{field}: {count} values, over the limit of {MAX_FILTER_VALUES}; split the \
                 request, or narrow it by tags or dates instead"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("doc-{i}.md")).collect()
    }

    #[test]
    fn lists_up_to_the_cap_pass() {
        // Act + Assert
        assert!(check_filter_lists(&values(MAX_FILTER_VALUES), &values(MAX_FILTER_VALUES)).is_ok());
        assert!(check_filter_lists(&[], &[]).is_ok());
    }

    #[test]
    fn a_document_list_over_the_cap_is_refused_naming_the_field_and_the_cap() {
        // Act
        let error = check_filter_lists(&values(MAX_FILTER_VALUES + 1), &[]).unwrap_err();

        // Assert
        assert_eq!(error.code(), crate::error::ErrorCode::InvalidRequest);
        let message = error.to_string();
        assert!(
            message.starts_with("filter.documents: 1001 values"),
            "{message}"
        );
        assert!(message.contains("limit of 1000"), "{message}");
    }

    #[test]
    fn a_tag_list_over_the_cap_is_refused_naming_the_field() {
        // Act
        let error = check_filter_lists(&[], &values(MAX_FILTER_VALUES + 1)).unwrap_err();

        // Assert
        assert!(error.to_string().starts_with("filter.tags:"), "{error}");
    }
}
