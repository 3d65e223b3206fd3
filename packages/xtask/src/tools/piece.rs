//! The pieces of the tool install, their names and aliases, and the selection a command
//! line makes.

use anyhow::{bail, Result};

/// One piece of the install, in the order `--list` prints them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Piece {
    Apt,
    RustTarget,
    Wasmd,
    Hermes,
    CosmwasmCheck,
    WasmOpt,
    FhirValidator,
    Synthea,
}

impl Piece {
    pub const ALL: [Piece; 8] = [
        Piece::Apt,
        Piece::RustTarget,
        Piece::Wasmd,
        Piece::Hermes,
        Piece::CosmwasmCheck,
        Piece::WasmOpt,
        Piece::FhirValidator,
        Piece::Synthea,
    ];

    /// The pieces that build (or download) something, after apt and rust-target, in the
    /// order they are handled; those not cached build in parallel.
    pub fn long() -> &'static [Piece] {
        &Piece::ALL[2..]
    }

    pub fn name(self) -> &'static str {
        match self {
            Piece::Apt => "apt",
            Piece::RustTarget => "rust-target",
            Piece::Wasmd => "wasmd",
            Piece::Hermes => "hermes",
            Piece::CosmwasmCheck => "cosmwasm-check",
            Piece::WasmOpt => "wasm-opt",
            Piece::FhirValidator => "fhir-validator",
            Piece::Synthea => "synthea",
        }
    }

    /// A piece by its name or one of its aliases (those install-tools.sh took).
    pub fn parse(s: &str) -> Option<Piece> {
        Some(match s {
            "apt" | "debs" => Piece::Apt,
            "rust-target" | "rust" | "wasm32" => Piece::RustTarget,
            "wasmd" => Piece::Wasmd,
            "hermes" | "ibc-relayer-cli" => Piece::Hermes,
            "cosmwasm-check" => Piece::CosmwasmCheck,
            "wasm-opt" | "binaryen" => Piece::WasmOpt,
            "fhir-validator" | "hapi" => Piece::FhirValidator,
            "synthea" => Piece::Synthea,
            _ => return None,
        })
    }
}

/// The names of pieces, space-separated, as the messages print them.
pub fn names(pieces: &[Piece]) -> String {
    pieces
        .iter()
        .map(|p| p.name())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The pieces a command line asks for, in its order (each once); all of them when it
/// names none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selection {
    pieces: Vec<Piece>,
}

impl Selection {
    pub fn parse(args: &[String]) -> Result<Selection> {
        let mut pieces = Vec::new();
        for arg in args {
            let Some(p) = Piece::parse(arg) else {
                bail!("unknown piece '{arg}' (known: {})", names(&Piece::ALL));
            };
            if !pieces.contains(&p) {
                pieces.push(p);
            }
        }
        if pieces.is_empty() {
            pieces = Piece::ALL.to_vec();
        }
        Ok(Selection { pieces })
    }

    pub fn pieces(&self) -> &[Piece] {
        &self.pieces
    }

    pub fn has(&self, p: Piece) -> bool {
        self.pieces.contains(&p)
    }

    /// apt runs first when it is selected or a selected piece needs Debian packages.
    pub fn runs_apt(&self) -> bool {
        [
            Piece::Apt,
            Piece::Wasmd,
            Piece::Hermes,
            Piece::CosmwasmCheck,
        ]
        .iter()
        .any(|&p| self.has(p))
    }

    /// The long pieces selected, in their fixed order.
    pub fn long(&self) -> Vec<Piece> {
        Piece::long()
            .iter()
            .copied()
            .filter(|&p| self.has(p))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(args: &[&str]) -> Result<Selection> {
        Selection::parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn no_piece_means_all_in_the_listed_order() {
        let s = sel(&[]).unwrap();
        assert_eq!(s.pieces(), &Piece::ALL);
        assert_eq!(
            names(s.pieces()),
            "apt rust-target wasmd hermes cosmwasm-check wasm-opt fhir-validator synthea"
        );
    }

    #[test]
    fn aliases_name_their_piece_and_the_order_given_is_kept_once() {
        let s = sel(&[
            "binaryen",
            "debs",
            "hapi",
            "wasm-opt",
            "ibc-relayer-cli",
            "wasm32",
        ])
        .unwrap();
        assert_eq!(
            s.pieces(),
            &[
                Piece::WasmOpt,
                Piece::Apt,
                Piece::FhirValidator,
                Piece::Hermes,
                Piece::RustTarget
            ]
        );
        assert_eq!(Piece::parse("rust"), Some(Piece::RustTarget));
        for p in Piece::ALL {
            assert_eq!(Piece::parse(p.name()), Some(p));
        }
    }

    #[test]
    fn an_unknown_piece_is_refused_naming_the_known_ones() {
        let err = sel(&["wasmd", "nope"]).unwrap_err().to_string();
        assert_eq!(
            err,
            "unknown piece 'nope' (known: apt rust-target wasmd hermes cosmwasm-check \
             wasm-opt fhir-validator synthea)"
        );
    }

    #[test]
    fn apt_runs_for_the_pieces_that_need_debian_packages() {
        assert!(sel(&[]).unwrap().runs_apt());
        assert!(sel(&["wasmd"]).unwrap().runs_apt());
        assert!(sel(&["cosmwasm-check"]).unwrap().runs_apt());
        assert!(!sel(&["wasm-opt", "synthea", "rust-target"])
            .unwrap()
            .runs_apt());
    }

    #[test]
    fn long_pieces_come_in_their_fixed_order() {
        let s = sel(&["synthea", "rust-target", "wasm-opt", "wasmd"]).unwrap();
        assert_eq!(s.long(), vec![Piece::Wasmd, Piece::WasmOpt, Piece::Synthea]);
    }
}
