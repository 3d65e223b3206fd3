//! Two-chain in-process tests: two (or three) cw-multi-test chains, the real registry and
//! exchange contracts, and a test relayer driving their IBC entry points.

mod attacks;
mod bounds;
mod break_glass;
mod channel_binding;
mod chunks;
mod consent;
mod exchange_flow;
mod finalisation;
mod handshake;
mod incoming_checks;
mod incoming_quotas;
mod lifecycle;
mod linkability;
mod partner_conduct;
mod privacy;
mod reply_binding;
mod reply_checks;
mod request_checks;
mod third_partner;
