//! `ehrx admin` against the real registry and exchange contracts, in process (the
//! two-chain world of `common`): what the admin's commands change is read back from the
//! registry; a non-admin and bad input change nothing.

mod common;

use base64::Engine as _;
use clap::Parser;
use common::{InProcess, Side, World};
use cosmwasm_std::Addr;
use ehr_protocol::exchange::PurposeOfUse;
use ehr_protocol::registry::{
    Clinician, ClinicianStatus, ConfigResponse, PartnerStatus, PeerStatus, Role,
};
use ehrx::admin::Registry;
use ehrx::chain::ChainClient;
use ehrx::cli::{self, Cli};
use ehrx::clinician::{ClinicianKey, Registration};
use ehrx::error::AdminError;
use ehrx::keys::PeerKeys;
use std::cell::RefCell;
use std::rc::Rc;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

struct Admin {
    world: Rc<RefCell<World>>,
    registry: String,
    admin: Addr,
}

impl Admin {
    fn new() -> Admin {
        let world = World::new();
        let (registry, admin) = {
            let w = world.borrow();
            (w.a.registry.to_string(), w.a.admin.clone())
        };
        Admin {
            world,
            registry,
            admin,
        }
    }

    fn client(&self, sender: &Addr) -> InProcess {
        InProcess::new(&self.world, Side::A, sender)
    }

    fn addr(&self, name: &str) -> Addr {
        self.world.borrow().a.addr(name)
    }

    /// `ehrx --registry <A's registry> admin ARGS` signed by `sender`.
    fn run_as(&self, sender: &Addr, args: &[&str]) -> anyhow::Result<()> {
        let mut all = vec!["ehrx", "--registry", &self.registry, "admin"];
        all.extend_from_slice(args);
        let client = self.client(sender);
        cli::run(Cli::try_parse_from(all).unwrap(), &|_| {
            Ok(Box::new(client.clone()) as Box<dyn ChainClient>)
        })
    }

    fn run(&self, args: &[&str]) -> anyhow::Result<()> {
        self.run_as(&self.admin.clone(), args)
    }

    fn with_registry<T>(&self, read: impl FnOnce(&Registry) -> T) -> T {
        let client = self.client(&self.admin);
        read(&Registry {
            chain: &client,
            contract: self.registry.clone(),
        })
    }

    fn peer(&self, address: &Addr) -> Option<ehr_protocol::registry::Peer> {
        self.with_registry(|r| r.peer(address.as_str()).unwrap())
    }

    fn config(&self) -> ConfigResponse {
        self.with_registry(|r| r.config().unwrap())
    }
}

fn register_args<'a>(address: &'a str, keys: &'a [String; 2]) -> Vec<&'a str> {
    vec![
        "register-peer",
        "--address",
        address,
        "--roles",
        "store,request",
        "--signing-key",
        &keys[0],
        "--encryption-key",
        &keys[1],
        "--device-id",
        "ws-12",
    ]
}

fn public_keys(keys: &PeerKeys) -> [String; 2] {
    [
        b64(&keys.signing_public()),
        b64(keys.encryption_public().as_bytes()),
    ]
}

#[test]
fn a_registered_peer_is_found_by_the_peer_query_and_its_lifecycle_follows_the_commands() {
    let h = Admin::new();
    let address = h.addr("new-peer");
    let keys = public_keys(&PeerKeys::generate());
    h.run(&register_args(address.as_str(), &keys)).unwrap();
    let peer = h.peer(&address).expect("registered");
    assert_eq!(peer.roles, vec![Role::Store, Role::Request]);
    assert_eq!(peer.status, PeerStatus::Active);
    assert_eq!(b64(&peer.signing_key), keys[0]);
    assert_eq!(peer.device_id, "ws-12");

    let rotated = public_keys(&PeerKeys::generate());
    h.run(&[
        "rotate-peer-keys",
        "--address",
        address.as_str(),
        "--signing-key",
        &rotated[0],
        "--encryption-key",
        &rotated[1],
    ])
    .unwrap();
    let peer = h.peer(&address).unwrap();
    assert_eq!([b64(&peer.signing_key), b64(&peer.encryption_key)], rotated);

    h.run(&["revoke-peer", "--address", address.as_str()])
        .unwrap();
    assert_eq!(h.peer(&address).unwrap().status, PeerStatus::Revoked);
    h.run(&["show", "peer", "--address", address.as_str()])
        .unwrap();
}

#[test]
fn a_non_admin_is_refused_by_name_and_nothing_changes() {
    let h = Admin::new();
    let intruder = h.addr("intruder");
    let address = h.addr("new-peer");
    let keys = public_keys(&PeerKeys::generate());
    let err = h
        .run_as(&intruder, &register_args(address.as_str(), &keys))
        .unwrap_err();
    let refusal = err.downcast_ref::<AdminError>().expect("AdminError");
    assert!(matches!(refusal, AdminError::NotAdmin { .. }));
    let text = format!("{err:#}");
    assert!(text.contains("is not the registry admin"), "{text}");
    assert!(text.contains(h.admin.as_str()), "{text}");
    assert!(text.contains("--key-name"), "{text}");
    assert!(h.peer(&address).is_none());
    assert!(h
        .run_as(&intruder, &["set-policy", "--set", "rate_limit_count=100"])
        .is_err());
    assert_eq!(h.config().policy.rate_limit_count, 1);
}

#[test]
fn bad_input_is_refused_before_anything_is_sent() {
    let h = Admin::new();
    let address = h.addr("new-peer");
    let keys = public_keys(&PeerKeys::generate());
    let swapped = [keys[1].clone(), keys[0].clone()];
    let err = h
        .run(&register_args(address.as_str(), &swapped))
        .unwrap_err()
        .to_string();
    assert!(err.contains("--signing-key is 32 bytes"), "{err}");
    assert!(h.peer(&address).is_none());
    let before = h.config();
    let err = h
        .run(&["set-policy", "--set", "rate_limit=5"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a policy field"), "{err}");
    // The contract's own checks still apply: a chunk size that is no power of two.
    assert!(h
        .run(&["set-policy", "--set", "max_chunk_bytes=1000"])
        .is_err());
    assert_eq!(h.config(), before);
}

#[test]
fn partners_clinicians_and_policy_through_the_admin_commands() {
    let h = Admin::new();
    let custodian = b64(PeerKeys::generate().encryption_public().as_bytes());
    h.run(&[
        "upsert-partner",
        "--partner",
        "hospital-c",
        "--connection-id",
        "connection-9",
        "--counterparty-port",
        "wasm.hospc1exchange",
        "--encryption-key",
        &custodian,
        "--accept",
        "treatment",
    ])
    .unwrap();
    let partner = h
        .with_registry(|r| r.partner("hospital-c").unwrap())
        .expect("partner");
    assert_eq!(partner.connection_id, "connection-9");
    assert_eq!(partner.status, PartnerStatus::Active);
    assert_eq!(partner.accepted_purposes, vec![PurposeOfUse::Treatment]);
    assert_eq!(b64(partner.encryption_key.as_ref().unwrap()), custodian);
    let partners = h.with_registry(|r| r.partners().unwrap());
    assert!(partners.iter().any(|p| p.partner_id == "hospital-b"));
    assert!(partners.iter().any(|p| p.partner_id == "hospital-c"));
    h.run(&["show", "partners"]).unwrap();

    // What `ehrx clinician new` printed on the clinician's machine.
    let tmp = tempfile::tempdir().unwrap();
    let key = ClinicianKey::create("nurse-7", &tmp.path().join("nurse-7.key"), None).unwrap();
    let registration =
        Registration::new(vec![PurposeOfUse::EmergencyTreatment], None, None).unwrap();
    let message = tmp.path().join("register.json");
    std::fs::write(
        &message,
        serde_json::to_string(&key.register_msg(&registration)).unwrap(),
    )
    .unwrap();
    h.run(&["register-clinician", "--message", message.to_str().unwrap()])
        .unwrap();
    let clinician = |h: &Admin| -> Clinician {
        h.with_registry(|r| {
            r.query::<Option<Clinician>>(&ehr_protocol::registry::QueryMsg::Clinician {
                clinician_id: "nurse-7".into(),
            })
            .unwrap()
        })
        .expect("clinician")
    };
    assert_eq!(
        clinician(&h).signing_key.as_slice(),
        key.public_key().as_slice()
    );
    assert_eq!(clinician(&h).status, ClinicianStatus::Active);
    h.run(&["revoke-clinician", "--id", "nurse-7"]).unwrap();
    assert_eq!(clinician(&h).status, ClinicianStatus::Revoked);

    let policy = tmp.path().join("policy.json");
    std::fs::write(
        &policy,
        r#"{"rate_limit_count": 4, "strikes_before_quarantine": 9}"#,
    )
    .unwrap();
    h.run(&["set-policy", "--file", policy.to_str().unwrap()])
        .unwrap();
    let now = h.config().policy;
    assert_eq!(
        (now.rate_limit_count, now.strikes_before_quarantine),
        (4, 9)
    );
    h.run(&["show", "config"]).unwrap();
}

#[test]
fn the_registry_is_found_through_the_exchange_when_not_given() {
    let h = Admin::new();
    let exchange = h.world.borrow().a.exchange.to_string();
    let client = h.client(&h.admin);
    let settings = ehrx::config::Settings {
        exchange: Some(exchange),
        ..Default::default()
    };
    let registry = Registry::locate(&client, &settings).unwrap();
    assert_eq!(registry.contract, h.registry);
    let err = Registry::locate(&client, &ehrx::config::Settings::default())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("--registry"), "{err}");
}

#[test]
fn deploy_uploads_instantiates_and_wires_both_contracts() {
    let h = Admin::new();
    let client = h.client(&h.admin);
    let deployed = ehrx::admin::deploy(
        &client,
        "hospital-z",
        b"\0asm registry",
        b"\0asm exchange",
        "ehrx",
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(deployed.txhashes.len(), 5);
    assert_ne!(deployed.code_ids.registry, deployed.code_ids.exchange);
    let registry = Registry {
        chain: &client,
        contract: deployed.contracts.registry.clone(),
    };
    let config = registry.config().unwrap();
    assert_eq!(config.network_id, "hospital-z");
    assert_eq!(config.admin, h.admin);
    assert_eq!(
        config.exchange.map(|e| e.to_string()),
        Some(deployed.contracts.exchange.clone())
    );
    assert_eq!(
        deployed.exchange_port,
        format!("wasm.{}", deployed.contracts.exchange)
    );
    // The exchange names the new registry: its network is the new one.
    let exchange = ehrx::peer::Exchange::connect(&client, &deployed.contracts.exchange).unwrap();
    assert_eq!(exchange.registry, deployed.contracts.registry);
    assert_eq!(exchange.network, "hospital-z");
}
