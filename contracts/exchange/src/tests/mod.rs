//! Unit tests with `cosmwasm_std::testing` mocks; the registry is a mocked wasm querier.
//! Whole flows across two chains are in the workspace's `tests` crate.

mod checks;
mod entry_points;
mod migrate;
mod queries;
mod support;
