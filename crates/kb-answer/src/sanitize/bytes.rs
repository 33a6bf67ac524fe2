//! Byte classes shared by the scanner and the Markdown grammar it reads.

pub(super) fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c')
}

/// Whether the line after a newline is blank (`None`: the text ends before it can be told).
pub(super) fn blank_line_after(rest: &[u8]) -> Option<bool> {
    for &c in rest {
        match c {
            b' ' | b'\t' | b'\r' => {}
            b'\n' => return Some(true),
            _ => return Some(false),
        }
    }
    None
}
