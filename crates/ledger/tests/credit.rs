//! The proxy's credit, reservations and three-counter rules.

use cocoon_ledger::*;

const PRICE: u64 = 10;

fn onchain(balance: u64, stake: u64, charged: u64) -> OnChainClient {
    OnChainClient {
        state: ContractState::Open,
        balance,
        stake,
        tokens_charged: charged,
    }
}

fn account(balance: u64, stake: u64) -> ClientAccount {
    ClientAccount::new(PRICE, onchain(balance, stake, 0), PeerCounters::new()).unwrap()
}

#[test]
fn credit_is_min_of_paid_and_charged_plus_stake_minus_reserved_and_used() {
    // paid = 1000 tokens, stake = 300 tokens: the stake binds.
    let mut a = account(10_000, 3_000);
    assert_eq!(a.paid_tokens(), 1_000);
    assert_eq!(a.credit(), 300);
    let r = a.reserve(100).unwrap();
    assert_eq!(a.credit(), 200);
    assert_eq!(
        a.settle(r, 40).unwrap(),
        Settlement {
            billed: 40,
            unbilled: 0
        }
    );
    assert_eq!(a.credit(), 260);
    // Balance below stake: what was paid binds.
    let b = account(1_005, 3_000);
    assert_eq!(b.credit(), 100, "nanoTON → tokens truncates");
}

#[test]
fn settle_never_bills_above_the_reservation() {
    let mut a = account(100_000, 100_000);
    let r = a.reserve(50).unwrap();
    assert_eq!(
        a.settle(r, 80).unwrap(),
        Settlement {
            billed: 50,
            unbilled: 30
        }
    );
    assert_eq!(a.used().in_memory(), 50);
    assert_eq!(a.reserved(), 0);
}

#[test]
fn partial_settlements_bill_at_most_the_reservation_in_total() {
    let mut a = account(100_000, 100_000);
    let r = a.reserve(50).unwrap();
    // A first worker delivered 20 tokens, then failed; a second continues.
    assert_eq!(a.settle_part(r, 20).unwrap().billed, 20);
    assert_eq!(
        (a.reserved(), a.used().in_memory(), a.in_flight()),
        (30, 20, 1)
    );
    // A second failure reports more than is left: capped.
    assert_eq!(
        a.settle_part(r, 45).unwrap(),
        Settlement {
            billed: 30,
            unbilled: 15
        }
    );
    // The last worker's usage finds nothing left to bill.
    assert_eq!(a.settle(r, 7).unwrap().billed, 0);
    assert_eq!(
        (a.reserved(), a.used().in_memory(), a.in_flight()),
        (0, 50, 0)
    );
    assert_eq!(
        a.settle_part(r, 1).unwrap_err(),
        LedgerError::UnknownReservation(r.0)
    );
}

#[test]
fn release_frees_and_unknown_reservation_refused() {
    let mut a = account(100_000, 100_000);
    let r = a.reserve(50).unwrap();
    assert_eq!(a.in_flight(), 1);
    assert_eq!(a.release(r).unwrap(), 50);
    assert_eq!(a.credit(), 10_000);
    assert_eq!(
        a.release(r).unwrap_err(),
        LedgerError::UnknownReservation(r.0)
    );
    assert_eq!(
        a.settle(r, 1).unwrap_err(),
        LedgerError::UnknownReservation(r.0)
    );
}

#[test]
fn reserve_over_credit_is_refused() {
    let mut a = account(1_000, 1_000);
    assert_eq!(
        a.reserve(101).unwrap_err(),
        LedgerError::InsufficientCredit {
            needed: 101,
            available: 100
        }
    );
    let params = RootParams::default();
    let err = a.reserve_request(&params, 1_000, 1_000, 4_000).unwrap_err();
    assert!(matches!(err, LedgerError::InsufficientCredit { .. }));
    let (_, tokens) = a.reserve_request(&params, 5, 2, 1_000).unwrap();
    assert_eq!(tokens, params.reservation_tokens(5, 2, 1_000));
}

#[test]
fn closing_client_gets_no_credit() {
    let mut a = account(100_000, 10_000);
    let closing = OnChainClient {
        state: ContractState::Closing,
        ..onchain(10_000, 10_000, 0)
    };
    a.observe_chain(closing).unwrap();
    assert_eq!(a.credit(), 0);
    assert_eq!(
        a.reserve(1).unwrap_err(),
        LedgerError::ClientNotOpen {
            state: ContractState::Closing
        }
    );
}

#[test]
fn free_network_does_not_divide_by_zero() {
    let a = ClientAccount::new(0, onchain(0, 0, 0), PeerCounters::new()).unwrap();
    assert_eq!(a.credit(), u64::MAX);
}

#[test]
fn chain_view_is_monotonic_and_never_ahead_of_anchors() {
    let mut a = account(100_000, 100_000);
    let r = a.reserve(100).unwrap();
    a.settle(r, 100).unwrap();
    assert_eq!(a.chargeable(), None, "nothing anchored yet");
    a.used_mut().commit_db(1).unwrap();
    a.used_mut().anchored(1);
    assert_eq!(a.chargeable(), Some(100));
    a.observe_chain(onchain(99_000, 100_000, 100)).unwrap();
    assert_eq!(a.chargeable(), None);
    assert_eq!(a.uncharged(), 0);
    assert_eq!(
        a.observe_chain(onchain(99_000, 100_000, 99)).unwrap_err(),
        LedgerError::CounterWentBack {
            which: "tokens_charged",
            current: 100,
            got: 99
        }
    );
    // The chain knows a charge this proxy never anchored: its state was rolled back.
    assert_eq!(
        a.observe_chain(onchain(99_000, 100_000, 150)).unwrap_err(),
        LedgerError::PeerAhead {
            which: "tokens_charged",
            peer: 150,
            ours: 100
        }
    );
    assert!(ClientAccount::new(PRICE, onchain(0, 0, 5), PeerCounters::new()).is_err());
}

#[test]
fn counters_move_memory_then_db_then_chain() {
    let mut c = PeerCounters::new();
    c.add(10).unwrap();
    assert!(c.commit_db(1).unwrap());
    c.add(5).unwrap();
    assert!(c.commit_db(2).unwrap());
    assert!(!c.commit_db(3).unwrap(), "nothing new to write");
    c.add(1).unwrap();
    assert_eq!(
        c.view(),
        CounterView {
            in_memory: 16,
            committed_db: 15,
            committed_chain: 0
        }
    );
    assert_eq!(c.anchored(1), 10);
    assert_eq!(c.anchored(1), 10, "anchors are idempotent");
    assert_eq!(c.anchored(5), 15);
    assert_eq!(
        c.commit_db(2).unwrap_err(),
        LedgerError::CounterWentBack {
            which: "db seqno",
            current: 3,
            got: 2
        }
    );
    assert!(c.add(u64::MAX).is_err());
}

#[test]
fn counters_from_db_and_peer_checks() {
    assert!(matches!(
        PeerCounters::from_db(5, 6),
        Err(LedgerError::CounterAboveBound { .. })
    ));
    let c = PeerCounters::from_db(10, 8).unwrap();
    assert_eq!(c.in_memory(), 10);
    let peer = CounterView {
        in_memory: 12,
        committed_db: 10,
        committed_chain: 8,
    };
    c.check_peer_not_ahead(&peer).unwrap();
    let ahead = CounterView {
        committed_db: 11,
        ..peer
    };
    assert_eq!(
        c.check_peer_not_ahead(&ahead).unwrap_err(),
        LedgerError::PeerAhead {
            which: "committed_db",
            peer: 11,
            ours: 10
        }
    );
    let ahead = CounterView {
        committed_chain: 9,
        ..peer
    };
    assert!(matches!(
        c.check_peer_not_ahead(&ahead),
        Err(LedgerError::PeerAhead { .. })
    ));

    let mut seen = SeenCounters::default();
    seen.observe(peer).unwrap();
    let forgot = CounterView {
        committed_chain: 7,
        ..peer
    };
    assert_eq!(
        seen.observe(forgot).unwrap_err(),
        LedgerError::PeerBehind {
            which: "committed_chain",
            peer: 7,
            ours: 8
        }
    );
    seen.observe(CounterView {
        in_memory: 20,
        ..peer
    })
    .unwrap();
}
