//! kb-server
