//! Query answers and pagination.

use super::*;
use ehr_protocol::limits::{DEFAULT_PAGE, MAX_PAGE};
use ehr_protocol::registry::{
    CliniciansResponse, ConfigResponse, PartnersResponse, PeersResponse, Policy,
};

fn peers_page(s: &Setup, start_after: Option<String>, limit: Option<u32>) -> Vec<Peer> {
    let page: PeersResponse = s.query(QueryMsg::Peers { start_after, limit });
    page.peers
}

#[test]
fn config_reports_admin_exchange_network_and_policy() {
    let s = setup();
    let config: ConfigResponse = s.query(QueryMsg::Config {});
    assert_eq!(
        config,
        ConfigResponse {
            admin: s.admin.clone(),
            exchange: Some(s.exchange.clone()),
            network_id: "hospital-a".to_string(),
            policy: Policy::default(),
        }
    );
}

#[test]
fn peer_is_none_for_unknown_or_malformed_addresses() {
    let mut s = setup();
    let known = s.register("peer", 1, vec![Role::Store]);
    assert_eq!(s.peer(&known).unwrap().address, known);
    assert_eq!(s.peer(&s.addr("other")), None);
    for address in ["", "not an address", "COSMWASM1XYZ"] {
        let answer: Option<Peer> = s.query(QueryMsg::Peer {
            address: address.to_string(),
        });
        assert_eq!(answer, None);
    }
}

#[test]
fn peers_page_in_address_order_with_clamped_limits() {
    let mut s = setup();
    let total = (MAX_PAGE + 5) as usize;
    let mut addresses: Vec<Addr> = (0..total)
        .map(|i| s.register(&format!("peer-{i}"), 1, vec![Role::Request]))
        .collect();
    addresses.sort();

    assert_eq!(peers_page(&s, None, None).len(), DEFAULT_PAGE as usize);
    assert_eq!(peers_page(&s, None, Some(1000)).len(), MAX_PAGE as usize);
    assert_eq!(peers_page(&s, None, Some(0)).len(), 1);

    // Walking pages of 7 visits every peer once, in order.
    let mut seen = vec![];
    let mut cursor = None;
    loop {
        let page = peers_page(&s, cursor.clone(), Some(7));
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 7);
        cursor = Some(page.last().unwrap().address.to_string());
        seen.extend(page.into_iter().map(|p| p.address));
    }
    assert_eq!(seen, addresses);

    // Any string works as a cursor.
    assert_eq!(
        peers_page(&s, Some("zzz".to_string()), None),
        Vec::<Peer>::new()
    );
    assert_eq!(
        peers_page(&s, Some(String::new()), Some(3))
            .into_iter()
            .map(|p| p.address)
            .collect::<Vec<_>>(),
        addresses[..3].to_vec()
    );
}

#[test]
fn clinicians_and_partners_page_by_key() {
    let mut s = setup();
    let ids: Vec<String> = (0..5u8).map(|i| format!("clinician-{i}")).collect();
    for (i, id) in ids.iter().enumerate() {
        s.as_admin(ExecuteMsg::RegisterClinician {
            clinician: clinician_input(id, i as u8 + 1),
        })
        .unwrap();
    }
    let page: CliniciansResponse = s.query(QueryMsg::Clinicians {
        start_after: Some(ids[1].clone()),
        limit: Some(2),
    });
    assert_eq!(
        page.clinicians
            .into_iter()
            .map(|c| c.clinician_id)
            .collect::<Vec<_>>(),
        ids[2..4].to_vec()
    );

    for i in 0..4 {
        s.as_admin(ExecuteMsg::UpsertPartner {
            partner: partner_input(
                &format!("hospital-{i}"),
                &format!("connection-{i}"),
                "wasm.cosmwasm1x",
            ),
        })
        .unwrap();
    }
    let page: PartnersResponse = s.query(QueryMsg::Partners {
        start_after: Some("hospital-0".to_string()),
        limit: None,
    });
    assert_eq!(
        page.partners
            .into_iter()
            .map(|p| p.partner_id)
            .collect::<Vec<_>>(),
        vec!["hospital-1", "hospital-2", "hospital-3"]
    );
    let page: PartnersResponse = s.query(QueryMsg::Partners {
        start_after: None,
        limit: Some(1),
    });
    assert_eq!(page.partners.len(), 1);
    assert_eq!(page.partners[0].partner_id, "hospital-0");
}

#[test]
fn audit_log_pages_by_id() {
    let mut s = setup();
    for i in 0..5u8 {
        s.register(&format!("peer-{i}"), 1, vec![Role::Request]);
    }
    let all = s.audit();
    // instantiate, set exchange, five registrations
    assert_eq!(all.len(), 7);
    assert_eq!(
        all.iter().map(|e| e.id).collect::<Vec<_>>(),
        (1..=7).collect::<Vec<u64>>()
    );
    let page: AuditLogResponse = s.query(QueryMsg::AuditLog {
        start_after: Some(3),
        limit: Some(2),
    });
    assert_eq!(
        page.entries.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![4, 5]
    );
    let page: AuditLogResponse = s.query(QueryMsg::AuditLog {
        start_after: Some(7),
        limit: None,
    });
    assert!(page.entries.is_empty());
}
