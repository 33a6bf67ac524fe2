//! (being written)

use super::Read;
use crate::{LoadError, LoadLimits};

pub(crate) fn read_image(bytes: &[u8], limits: &LoadLimits) -> Result<Read, LoadError> {
    let _ = (bytes, limits);
    Err(LoadError::Unsupported)
}
