//! Channel handshake rules: unordered only, our version only, only a registered partner's
//! connection and counterparty port, one channel per partner, no closing from our side.

use cosmwasm_std::{IbcChannel, IbcChannelCloseMsg, IbcOrder};
use ehr_protocol::audit::AuditAction;
use ehr_tests::harness::chain::IbcEntry;
use ehr_tests::harness::relayer::{Relayer, VERSION};
use ehr_tests::harness::Chain;

fn partnered() -> (Chain, Chain, (String, String)) {
    let mut a = Chain::new("hospa", "hospital-a");
    let mut b = Chain::new("hospb", "hospital-b");
    let conns = Relayer::connect(&mut a, &mut b);
    let (a_port, b_port) = (a.port(), b.port());
    a.add_partner("hospital-b", &conns.0, &b_port);
    b.add_partner("hospital-a", &conns.1, &a_port);
    (a, b, conns)
}

#[test]
fn well_formed_channel_opens_and_binds_on_both_sides() {
    let (mut a, mut b, conns) = partnered();
    let link = Relayer::open_channel(&mut a, &mut b, &conns, IbcOrder::Unordered, VERSION).unwrap();
    assert_eq!(
        a.partner("hospital-b").unwrap().channel_id,
        Some(link.src.channel_id.clone())
    );
    assert_eq!(
        b.partner("hospital-a").unwrap().channel_id,
        Some(link.dst.channel_id.clone())
    );
    assert!(a
        .audit()
        .iter()
        .any(|e| e.action == AuditAction::ChannelOpened));
}

#[test]
fn ordered_channel_is_refused() {
    let (mut a, mut b, conns) = partnered();
    let err =
        Relayer::open_channel(&mut a, &mut b, &conns, IbcOrder::Ordered, VERSION).unwrap_err();
    assert!(err.contains("only unordered channels"), "{err}");
    assert_eq!(a.partner("hospital-b").unwrap().channel_id, None);
}

#[test]
fn wrong_version_is_refused() {
    let (mut a, mut b, conns) = partnered();
    let err =
        Relayer::open_channel(&mut a, &mut b, &conns, IbcOrder::Unordered, "ics20-1").unwrap_err();
    assert!(err.contains("UnsupportedVersion"), "{err}");
}

#[test]
fn unregistered_connection_is_refused() {
    let (mut a, mut b, _) = partnered();
    let conns = ("connection-7".to_string(), "connection-8".to_string());
    let err =
        Relayer::open_channel(&mut a, &mut b, &conns, IbcOrder::Unordered, VERSION).unwrap_err();
    assert!(err.contains("UnknownPartner"), "{err}");
}

#[test]
fn unregistered_counterparty_port_is_refused() {
    // A contract on A that is not A's registered exchange tries to open a channel to B.
    let (mut a, mut b, conns) = partnered();
    let rogue_port = format!("wasm.{}", a.addr("rogue-contract"));
    let err = Relayer::open_channel_from(
        &mut a,
        rogue_port,
        &mut b,
        &conns,
        IbcOrder::Unordered,
        VERSION,
    )
    .unwrap_err();
    assert!(err.contains("UnknownPartner"), "{err}");
    assert_eq!(b.partner("hospital-a").unwrap().channel_id, None);
}

#[test]
fn second_channel_to_the_same_partner_is_refused() {
    let (mut a, mut b, conns) = partnered();
    Relayer::open_channel(&mut a, &mut b, &conns, IbcOrder::Unordered, VERSION).unwrap();
    let err =
        Relayer::open_channel(&mut a, &mut b, &conns, IbcOrder::Unordered, VERSION).unwrap_err();
    assert!(err.contains("already bound"), "{err}");
}

#[test]
fn closing_from_our_side_is_refused_and_counterparty_close_unbinds() {
    let (mut a, mut b, conns) = partnered();
    let link = Relayer::open_channel(&mut a, &mut b, &conns, IbcOrder::Unordered, VERSION).unwrap();
    let channel = IbcChannel::new(
        link.src.clone(),
        link.dst.clone(),
        IbcOrder::Unordered,
        VERSION,
        link.src_connection.clone(),
    );
    let err = a
        .app
        .wasm_sudo(
            a.exchange.clone(),
            &IbcEntry::Close(IbcChannelCloseMsg::new_init(channel.clone())),
        )
        .unwrap_err();
    assert!(err.to_string().contains("does not close channels"), "{err}");
    assert!(a.partner("hospital-b").unwrap().channel_id.is_some());

    a.app
        .wasm_sudo(
            a.exchange.clone(),
            &IbcEntry::Close(IbcChannelCloseMsg::new_confirm(channel)),
        )
        .unwrap();
    assert_eq!(a.partner("hospital-b").unwrap().channel_id, None);
    assert!(a
        .audit()
        .iter()
        .any(|e| e.action == AuditAction::ChannelClosed));
}

#[test]
fn a_version_2_channel_is_refused_after_the_v3_bump() {
    let (mut a, mut b, conns) = partnered();
    assert_eq!(VERSION, "ehr-exchange-3");
    let err = Relayer::open_channel(
        &mut a,
        &mut b,
        &conns,
        IbcOrder::Unordered,
        "ehr-exchange-2",
    )
    .unwrap_err();
    assert!(err.contains("UnsupportedVersion"), "{err}");
    assert_eq!(a.partner("hospital-b").unwrap().channel_id, None);
}
