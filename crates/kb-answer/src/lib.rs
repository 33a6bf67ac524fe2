//! kb-answer
