//! The partner lookup table: upsert, the (connection, port) and channel indexes, binding.

use super::*;
use ehr_protocol::audit::AuditAction;
use ehr_protocol::registry::Partner;

const PORT_B: &str = "wasm.cosmwasm1contractb";
const PORT_C: &str = "wasm.cosmwasm1contractc";

fn partner(s: &Setup, id: &str) -> Option<Partner> {
    s.query(QueryMsg::Partner {
        partner_id: id.to_string(),
    })
}

fn by_connection(s: &Setup, connection: &str, port: &str) -> Option<Partner> {
    s.query(QueryMsg::PartnerByConnection {
        connection_id: connection.to_string(),
        counterparty_port: port.to_string(),
    })
}

fn by_channel(s: &Setup, channel: &str) -> Option<Partner> {
    s.query(QueryMsg::PartnerByChannel {
        channel_id: channel.to_string(),
    })
}

fn upsert(s: &mut Setup, input: PartnerInput) -> Result<Response, ContractError> {
    s.as_admin(ExecuteMsg::UpsertPartner { partner: input })
}

fn bind(s: &mut Setup, id: &str, channel: &str) -> Result<Response, ContractError> {
    s.as_exchange(ExecuteMsg::BindChannel {
        partner_id: id.to_string(),
        channel_id: channel.to_string(),
    })
}

fn unbind(s: &mut Setup, channel: &str) -> Response {
    s.as_exchange(ExecuteMsg::UnbindChannel {
        channel_id: channel.to_string(),
    })
    .expect("unbind")
}

#[test]
fn upsert_creates_a_partner_reachable_by_id_and_connection() {
    let mut s = setup();
    let res = upsert(&mut s, partner_input("hospital-b", "connection-0", PORT_B)).unwrap();
    assert_action(&res, "upsert_partner");
    assert_eq!(attr(&res, "created"), "true");
    let expected = Partner {
        partner_id: "hospital-b".to_string(),
        connection_id: "connection-0".to_string(),
        counterparty_port: PORT_B.to_string(),
        encryption_key: Some(encryption_key(9)),
        status: PartnerStatus::Active,
        channel_id: None,
        retired_channels: vec![],
        accepted_purposes: ehr_protocol::registry::default_accepted_purposes(),
    };
    assert_eq!(partner(&s, "hospital-b"), Some(expected.clone()));
    assert_eq!(by_connection(&s, "connection-0", PORT_B), Some(expected));
    assert_eq!(by_connection(&s, "connection-0", PORT_C), None);
    assert_eq!(by_connection(&s, "connection-1", PORT_B), None);
    assert_eq!(partner(&s, "hospital-c"), None);
    let entry = s.audit().pop().unwrap();
    assert_eq!(entry.action, AuditAction::PartnerChanged);
    assert_eq!(entry.partner_id.as_deref(), Some("hospital-b"));
    assert_eq!(entry.agent, Some(s.admin.clone()));
}

#[test]
fn another_partner_may_not_take_a_used_route() {
    let mut s = setup();
    upsert(&mut s, partner_input("hospital-b", "connection-0", PORT_B)).unwrap();
    let result = upsert(&mut s, partner_input("hospital-c", "connection-0", PORT_B));
    match result {
        Err(ContractError::PartnerConflict { partner_id, .. }) => {
            assert_eq!(partner_id, "hospital-b")
        }
        other => panic!("expected conflict, got {other:?}"),
    }
    assert_eq!(partner(&s, "hospital-c"), None);
    // Same connection, other port (another contract on that chain) is a different route.
    upsert(&mut s, partner_input("hospital-c", "connection-0", PORT_C)).unwrap();
    assert_eq!(
        by_connection(&s, "connection-0", PORT_C)
            .unwrap()
            .partner_id,
        "hospital-c"
    );
    assert_eq!(
        by_connection(&s, "connection-0", PORT_B)
            .unwrap()
            .partner_id,
        "hospital-b"
    );
}

#[test]
fn moving_a_partner_frees_its_old_route_and_unbinds_its_channel() {
    let mut s = setup();
    upsert(&mut s, partner_input("hospital-b", "connection-0", PORT_B)).unwrap();
    bind(&mut s, "hospital-b", "channel-0").unwrap();
    assert_eq!(
        partner(&s, "hospital-b").unwrap().channel_id.as_deref(),
        Some("channel-0")
    );

    let res = upsert(&mut s, partner_input("hospital-b", "connection-1", PORT_B)).unwrap();
    assert_eq!(attr(&res, "created"), "false");
    assert_eq!(attr(&res, "unbound_channel_id"), "channel-0");
    let moved = partner(&s, "hospital-b").unwrap();
    assert_eq!(moved.connection_id, "connection-1");
    assert_eq!(moved.channel_id, None);
    assert_eq!(by_connection(&s, "connection-0", PORT_B), None);
    assert_eq!(by_connection(&s, "connection-1", PORT_B), Some(moved));
    assert_eq!(by_channel(&s, "channel-0"), None);
    let audit = s.audit();
    let [.., changed, closed] = audit.as_slice() else {
        panic!("audit too short")
    };
    assert_eq!(changed.action, AuditAction::PartnerChanged);
    assert_eq!(closed.action, AuditAction::ChannelClosed);
    assert_eq!(closed.channel_id.as_deref(), Some("channel-0"));

    // The freed route is open to another partner; a new channel binds on the new route.
    upsert(&mut s, partner_input("hospital-c", "connection-0", PORT_B)).unwrap();
    bind(&mut s, "hospital-b", "channel-1").unwrap();

    // A port change alone also unbinds.
    upsert(&mut s, partner_input("hospital-b", "connection-1", PORT_C)).unwrap();
    assert_eq!(partner(&s, "hospital-b").unwrap().channel_id, None);
    assert_eq!(by_channel(&s, "channel-1"), None);
    assert_eq!(by_connection(&s, "connection-1", PORT_B), None);
}

#[test]
fn updating_other_fields_keeps_the_channel() {
    let mut s = setup();
    upsert(&mut s, partner_input("hospital-b", "connection-0", PORT_B)).unwrap();
    bind(&mut s, "hospital-b", "channel-0").unwrap();
    let mut input = partner_input("hospital-b", "connection-0", PORT_B);
    input.status = PartnerStatus::Suspended;
    input.encryption_key = None;
    let res = upsert(&mut s, input).unwrap();
    assert!(res.attributes.iter().all(|a| a.key != "unbound_channel_id"));
    let updated = partner(&s, "hospital-b").unwrap();
    assert_eq!(updated.status, PartnerStatus::Suspended);
    assert_eq!(updated.encryption_key, None);
    assert_eq!(updated.channel_id.as_deref(), Some("channel-0"));
    assert_eq!(by_channel(&s, "channel-0"), Some(updated));
}

#[test]
fn malformed_partners_are_refused() {
    let mut s = setup();
    let cases: Vec<(PartnerInput, &str)> = vec![
        (partner_input("", "connection-0", PORT_B), "partner_id"),
        (
            partner_input("hospital b", "connection-0", PORT_B),
            "partner_id",
        ),
        (partner_input("hospital-b", "", PORT_B), "connection_id"),
        (
            partner_input("hospital-b", "connection/0", PORT_B),
            "connection_id",
        ),
        (
            partner_input("hospital-b", "connection-0", "transfer"),
            "counterparty_port",
        ),
        (
            partner_input("hospital-b", "connection-0", "wasm."),
            "counterparty_port",
        ),
        (
            partner_input("hospital-b", "connection-0", "wasmcosmwasm1x"),
            "counterparty_port",
        ),
        (
            partner_input("hospital-b", "connection-0", "wasm.cosmwasm1 x"),
            "counterparty_port",
        ),
        (
            partner_input(
                "hospital-b",
                "connection-0",
                &format!("wasm.{}", "a".repeat(124)),
            ),
            "counterparty_port",
        ),
    ];
    for (input, field) in cases {
        assert_invalid(upsert(&mut s, input), field);
    }
    let mut input = partner_input("hospital-b", "connection-0", PORT_B);
    input.encryption_key = Some(Binary::from(vec![1u8; 16]));
    assert_invalid(upsert(&mut s, input), "encryption_key");
    assert_eq!(partner(&s, "hospital-b"), None);

    // The longest allowed port is 128 characters.
    let port = format!("wasm.{}", "a".repeat(123));
    assert_eq!(port.len(), 128);
    upsert(&mut s, partner_input("hospital-b", "connection-0", &port)).unwrap();
}

#[test]
fn bind_needs_a_known_partner_and_one_channel_per_partner() {
    let mut s = setup();
    assert!(matches!(
        bind(&mut s, "hospital-b", "channel-0"),
        Err(ContractError::UnknownPartner)
    ));
    upsert(&mut s, partner_input("hospital-b", "connection-0", PORT_B)).unwrap();
    upsert(&mut s, partner_input("hospital-c", "connection-1", PORT_C)).unwrap();

    let res = bind(&mut s, "hospital-b", "channel-0").unwrap();
    assert_action(&res, "bind_channel");
    assert_eq!(attr(&res, "already_bound"), "false");
    let bound = partner(&s, "hospital-b").unwrap();
    assert_eq!(bound.channel_id.as_deref(), Some("channel-0"));
    assert_eq!(by_channel(&s, "channel-0"), Some(bound));
    let entry = s.audit().pop().unwrap();
    assert_eq!(entry.action, AuditAction::ChannelOpened);
    assert_eq!(entry.channel_id.as_deref(), Some("channel-0"));
    assert_eq!(entry.partner_id.as_deref(), Some("hospital-b"));
    assert_eq!(entry.agent, Some(s.exchange.clone()));

    // Binding the same channel again is a no-op success.
    let before = s.audit_len();
    let res = bind(&mut s, "hospital-b", "channel-0").unwrap();
    assert_eq!(attr(&res, "already_bound"), "true");
    assert_eq!(s.audit_len(), before);

    // A second channel for the same partner is refused.
    assert!(matches!(
        bind(&mut s, "hospital-b", "channel-1"),
        Err(ContractError::ChannelAlreadyBound)
    ));
    // The bound channel cannot be given to another partner.
    assert!(matches!(
        bind(&mut s, "hospital-c", "channel-0"),
        Err(ContractError::ChannelAlreadyBound)
    ));
    assert_eq!(partner(&s, "hospital-c").unwrap().channel_id, None);
    assert_eq!(
        by_channel(&s, "channel-0").unwrap().partner_id,
        "hospital-b"
    );
    assert_eq!(by_channel(&s, "channel-1"), None);
    assert_invalid(bind(&mut s, "hospital-c", "channel 1"), "channel_id");
}

#[test]
fn unbind_clears_the_channel_and_unknown_channels_are_a_no_op() {
    let mut s = setup();
    upsert(&mut s, partner_input("hospital-b", "connection-0", PORT_B)).unwrap();
    bind(&mut s, "hospital-b", "channel-0").unwrap();

    let res = unbind(&mut s, "channel-0");
    assert_action(&res, "unbind_channel");
    assert_eq!(attr(&res, "unbound"), "true");
    assert_eq!(attr(&res, "partner_id"), "hospital-b");
    assert_eq!(partner(&s, "hospital-b").unwrap().channel_id, None);
    assert_eq!(by_channel(&s, "channel-0"), None);
    let entry = s.audit().pop().unwrap();
    assert_eq!(entry.action, AuditAction::ChannelClosed);
    assert_eq!(entry.channel_id.as_deref(), Some("channel-0"));

    let before = s.audit_len();
    let res = unbind(&mut s, "channel-7");
    assert_action(&res, "unbind_channel");
    assert_eq!(attr(&res, "unbound"), "false");
    assert_eq!(s.audit_len(), before);

    // After unbinding, a new handshake can bind a new channel.
    bind(&mut s, "hospital-b", "channel-1").unwrap();
    assert_eq!(
        partner(&s, "hospital-b").unwrap().channel_id.as_deref(),
        Some("channel-1")
    );
}
