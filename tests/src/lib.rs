//! Support for Tollgate's end-to-end tests: the tests themselves live in `tests/tests/`.

pub mod fixtures;
