//! (being written)

use super::Read;
use crate::{LoadError, LoadLimits, SourceFormat};

pub(crate) fn read(
    format: SourceFormat,
    bytes: &[u8],
    limits: &LoadLimits,
) -> Result<Read, LoadError> {
    let _ = (format, bytes, limits);
    Err(LoadError::Unsupported)
}
