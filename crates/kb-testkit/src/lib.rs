//! kb-testkit
