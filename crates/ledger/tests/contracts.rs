//! Contract flows and error paths, driven through the `World`.

mod common;

use cocoon_ledger::*;
use common::*;

const FUNDS: u64 = 1_000_000;

#[test]
fn charge_then_payout_splits_worker_part_and_commission() {
    let mut net = Net::new(&["alice", "w"], FUNDS);
    let client = net.client("alice", 100_000);
    let worker = net.worker("w");
    net.charge(client, 1_000).unwrap();
    assert_eq!(net.world.clients[&client].balance, 100_000 - 1_000 * PRICE);
    assert_eq!(net.world.proxies[&net.proxy].charged, 1_000 * PRICE);
    let fx = net.payout(worker, 1_000).unwrap();
    assert_eq!(fx.paid_to(&Address::wallet("w")), 1_000 * FEE);
    assert_eq!(net.wallet("w"), FUNDS + 1_000 * FEE);
    let p = &net.world.proxies[&net.proxy];
    assert_eq!(p.commission, 1_000 * (PRICE - FEE));
    assert_eq!(p.charged, 0);
    assert_eq!(p.stake, PROXY_STAKE);
    net.world.check_invariants().unwrap();
}

#[test]
fn payout_beyond_charged_draws_on_proxy_stake_then_refuses() {
    let mut net = Net::new(&["w"], 0);
    let worker = net.worker("w");
    // Nothing charged: the payout is the proxy's credit, taken from its stake.
    net.payout(worker, 100).unwrap();
    assert_eq!(
        net.world.proxies[&net.proxy].stake,
        PROXY_STAKE - 100 * PRICE
    );
    let huge = PROXY_STAKE / PRICE + 1_000;
    let err = net.payout(worker, huge).unwrap_err();
    assert!(matches!(err, LedgerError::InsufficientFunds { account, .. } if account == net.proxy));
    net.world.check_invariants().unwrap();
}

#[test]
fn charge_is_floored_at_balance() {
    let mut net = Net::new(&["alice"], FUNDS);
    let client = net.client("alice", 1_000);
    net.charge(client, 1_000_000).unwrap();
    let c = &net.world.clients[&client];
    assert_eq!((c.balance, c.tokens_charged), (0, 1_000_000));
    assert_eq!(net.world.proxies[&net.proxy].charged, 1_000);
    // An absurd count cannot overflow the amount.
    net.charge(client, u64::MAX).unwrap();
    net.world.check_invariants().unwrap();
}

#[test]
fn withdraw_only_above_stake() {
    let mut net = Net::new(&["alice"], FUNDS);
    let owner = Address::wallet("alice");
    let client = net.client("alice", CLIENT_STAKE + 500);
    let fx = net
        .apply(Op::ClientWithdraw {
            sender: owner,
            client,
        })
        .unwrap();
    assert_eq!(fx.paid_to(&owner), 500);
    assert_eq!(
        net.apply(Op::ClientWithdraw {
            sender: owner,
            client
        })
        .unwrap_err(),
        LedgerError::NothingToWithdraw {
            balance: CLIENT_STAKE,
            stake: CLIENT_STAKE
        }
    );
    let stranger = Address::wallet("mallory");
    assert!(matches!(
        net.apply(Op::ClientWithdraw {
            sender: stranger,
            client
        }),
        Err(LedgerError::NotOwner { .. })
    ));
}

#[test]
fn close_refunds_above_stake_now_and_stake_after_delay() {
    let mut net = Net::new(&["alice"], FUNDS);
    let owner = Address::wallet("alice");
    let client = net.client("alice", 50_000);
    net.charge(client, 100).unwrap();
    let fx = net
        .apply(Op::ClientRequestClose {
            sender: owner,
            client,
        })
        .unwrap();
    assert_eq!(fx.paid_to(&owner), 50_000 - 100 * PRICE - CLIENT_STAKE);
    assert_eq!(net.world.clients[&client].state, ContractState::Closing);
    // No top-up or withdraw while closing.
    assert!(matches!(
        net.apply(Op::ClientTopUp {
            sender: owner,
            client,
            amount: 1
        }),
        Err(LedgerError::WrongState { .. })
    ));
    assert!(matches!(
        net.apply(Op::ClientWithdraw {
            sender: owner,
            client
        }),
        Err(LedgerError::WrongState { .. })
    ));
    // Too early for the forced refund.
    net.advance(CLIENT_DELAY - 1);
    assert!(matches!(
        net.apply(Op::ClientRequestClose {
            sender: owner,
            client
        }),
        Err(LedgerError::NotUnlocked { .. })
    ));
    // The proxy may still charge during the delay.
    net.charge(client, 200).unwrap();
    net.advance(1);
    let fx = net
        .apply(Op::ClientRequestClose {
            sender: owner,
            client,
        })
        .unwrap();
    assert_eq!(fx.paid_to(&owner), CLIENT_STAKE - 100 * PRICE);
    assert_eq!(net.world.clients[&client].state, ContractState::Closed);
    assert_eq!(net.wallet("alice"), FUNDS - 200 * PRICE);
    assert!(matches!(
        net.apply(Op::ClientRequestClose {
            sender: owner,
            client
        }),
        Err(LedgerError::WrongState {
            state: ContractState::Closed,
            ..
        })
    ));
    assert!(matches!(
        net.charge(client, 300),
        Err(LedgerError::WrongState { .. })
    ));
    net.world.check_invariants().unwrap();
}

#[test]
fn grant_refund_charges_and_closes_at_once() {
    let mut net = Net::new(&["alice"], FUNDS);
    let client = net.client("alice", 50_000);
    let voucher = net.sign(VoucherOp::ClientGrantRefund, client, 100);
    let fx = net
        .apply(Op::ClientGrantRefund { client, voucher })
        .unwrap();
    assert_eq!(fx.paid_to(&Address::wallet("alice")), 50_000 - 100 * PRICE);
    assert_eq!(net.world.clients[&client].state, ContractState::Closed);
    assert!(net.world.proxies[&net.proxy].clients.is_empty());
}

#[test]
fn proxy_closes_only_after_everyone_settled_and_delay() {
    let mut net = Net::new(&["alice", "w"], FUNDS);
    let owner = net.proxy_owner;
    let proxy = net.proxy;
    let client = net.client("alice", 50_000);
    let worker = net.worker("w");
    net.charge(client, 100).unwrap();
    net.payout(worker, 60).unwrap();

    assert!(matches!(
        net.apply(Op::ProxyCompleteClose {
            sender: owner,
            proxy
        }),
        Err(LedgerError::WrongState {
            state: ContractState::Open,
            ..
        })
    ));
    let mallory = Address::wallet("alice");
    assert!(matches!(
        net.apply(Op::ProxyRequestClose {
            sender: mallory,
            proxy
        }),
        Err(LedgerError::NotOwner { .. })
    ));
    net.apply(Op::ProxyRequestClose {
        sender: owner,
        proxy,
    })
    .unwrap();
    assert!(matches!(
        net.apply(Op::ProxyRequestClose {
            sender: owner,
            proxy
        }),
        Err(LedgerError::WrongState { .. })
    ));
    // Closing proxies take no new contracts, top-ups or stake.
    assert!(matches!(
        net.apply(Op::DeployWorker {
            owner: Address::wallet("w2"),
            proxy
        }),
        Err(LedgerError::WrongState { .. })
    ));
    assert!(matches!(
        net.apply(Op::ClientTopUp {
            sender: mallory,
            client,
            amount: 5
        }),
        Err(LedgerError::WrongState { .. })
    ));
    assert!(matches!(
        net.apply(Op::ProxyIncreaseStake {
            sender: owner,
            proxy,
            amount: 5
        }),
        Err(LedgerError::WrongState { .. })
    ));
    net.advance(PROXY_DELAY);
    assert_eq!(
        net.apply(Op::ProxyCompleteClose {
            sender: owner,
            proxy
        })
        .unwrap_err(),
        LedgerError::ProxyHasOpenContracts {
            clients: 1,
            workers: 1
        }
    );
    let refund = net.sign(VoucherOp::ClientGrantRefund, client, 100);
    net.apply(Op::ClientGrantRefund {
        client,
        voucher: refund,
    })
    .unwrap();
    let last = net.sign(VoucherOp::WorkerLastPayout, worker, 100);
    net.apply(Op::WorkerLastPayout {
        worker,
        voucher: last,
    })
    .unwrap();
    net.apply(Op::ProxyWithdraw {
        sender: owner,
        proxy,
    })
    .unwrap();
    net.apply(Op::ProxyCompleteClose {
        sender: owner,
        proxy,
    })
    .unwrap();

    assert_eq!(
        net.world.in_contracts(),
        0,
        "every nanoTON is back in a wallet"
    );
    assert_eq!(net.wallet("alice"), FUNDS - 100 * PRICE);
    assert_eq!(net.wallet("w"), FUNDS + 100 * FEE);
    assert_eq!(
        net.world.balance(&owner),
        10 * PROXY_STAKE + 100 * (PRICE - FEE)
    );
    net.world.check_invariants().unwrap();
}

#[test]
fn proxy_close_waits_for_its_delay() {
    let mut net = Net::new(&[], 0);
    let (owner, proxy) = (net.proxy_owner, net.proxy);
    net.apply(Op::ProxyRequestClose {
        sender: owner,
        proxy,
    })
    .unwrap();
    net.advance(PROXY_DELAY - 1);
    assert!(matches!(
        net.apply(Op::ProxyCompleteClose {
            sender: owner,
            proxy
        }),
        Err(LedgerError::NotUnlocked { .. })
    ));
}

#[test]
fn proxy_withdraw_needs_commission_and_owner() {
    let mut net = Net::new(&[], 0);
    let (owner, proxy) = (net.proxy_owner, net.proxy);
    assert!(matches!(
        net.apply(Op::ProxyWithdraw {
            sender: owner,
            proxy
        }),
        Err(LedgerError::NothingToWithdraw { .. })
    ));
    assert!(matches!(
        net.apply(Op::ProxyWithdraw {
            sender: Address::wallet("x"),
            proxy
        }),
        Err(LedgerError::NotOwner { .. })
    ));
}

#[test]
fn deploy_errors() {
    let mut net = Net::new(&["alice"], FUNDS);
    net.client("alice", 0);
    let owner = Address::wallet("alice");
    assert!(matches!(
        net.apply(Op::DeployClient {
            owner,
            proxy: net.proxy,
            deposit: 0
        }),
        Err(LedgerError::AlreadyDeployed(_))
    ));
    let nowhere = Address::wallet("nowhere");
    assert_eq!(
        net.apply(Op::DeployClient {
            owner,
            proxy: nowhere,
            deposit: 0
        })
        .unwrap_err(),
        LedgerError::UnknownContract(nowhere)
    );
    let key = public_key(&net.key);
    assert_eq!(
        net.apply(Op::DeployProxy {
            owner,
            key,
            params_version: 2,
            stake: 1
        })
        .unwrap_err(),
        LedgerError::StakeTooLow {
            got: 1,
            min: PROXY_STAKE
        }
    );
    // Not enough coins in the wallet for the attached value.
    let poor = Address::wallet("poor");
    assert!(matches!(
        net.apply(Op::DeployClient { owner: poor, proxy: net.proxy, deposit: 5 }),
        Err(LedgerError::InsufficientFunds { account, .. }) if account == poor
    ));
    assert!(!net
        .world
        .clients
        .contains_key(&Address::client_contract(&net.proxy, &poor)));
}

#[test]
fn invalid_params_refused() {
    let bad = RootParams {
        price_per_token: 10,
        worker_fee_per_token: 11,
        ..params()
    };
    let owner = Address::wallet("o");
    assert!(matches!(
        ProxyContract::deploy(owner, PublicKey([1; 32]), bad, 1, PROXY_STAKE),
        Err(LedgerError::InvalidParams(_))
    ));
}

#[test]
fn clock_and_amount_errors() {
    let mut net = Net::new(&["alice"], FUNDS);
    let client = net.client("alice", 0);
    let owner = Address::wallet("alice");
    net.advance(10);
    assert_eq!(
        net.world
            .apply(
                &Op::ClientWithdraw {
                    sender: owner,
                    client
                },
                5
            )
            .unwrap_err(),
        LedgerError::ClockWentBack { last: 10, now: 5 }
    );
    assert_eq!(
        net.apply(Op::ClientTopUp {
            sender: owner,
            client,
            amount: 0
        })
        .unwrap_err(),
        LedgerError::ZeroAmount
    );
    assert!(matches!(
        net.apply(Op::ClientIncreaseStake {
            sender: owner,
            client,
            stake: CLIENT_STAKE
        }),
        Err(LedgerError::StakeTooLow { .. })
    ));
    net.apply(Op::ClientIncreaseStake {
        sender: owner,
        client,
        stake: 2 * CLIENT_STAKE,
    })
    .unwrap();
    net.apply(Op::ClientSetSecretHash {
        sender: owner,
        client,
        hash: [3; 32],
    })
    .unwrap();
    assert_eq!(net.world.clients[&client].secret_hash, [3; 32]);
    assert!(matches!(
        net.apply(Op::ClientSetSecretHash {
            sender: Address::wallet("x"),
            client,
            hash: [0; 32]
        }),
        Err(LedgerError::NotOwner { .. })
    ));
    assert!(matches!(
        net.apply(Op::Mint {
            to: owner,
            amount: u64::MAX
        }),
        Err(LedgerError::Overflow(_))
    ));
}

#[test]
fn contract_refuses_a_foreign_proxy() {
    let mut net = Net::new(&["alice"], FUNDS);
    let client = net.client("alice", 100);
    let mut c = net.world.clients[&client].clone();
    let key = keypair_from_seed(&[5; 32]).unwrap();
    let mut other = ProxyContract::deploy(
        Address::wallet("o2"),
        public_key(&key),
        params(),
        1,
        PROXY_STAKE,
    )
    .unwrap();
    assert!(matches!(
        c.top_up(&mut other, 10),
        Err(LedgerError::WrongProxy { .. })
    ));
    let mut w = WorkerContract::deploy(Address::wallet("w"), &mut other).unwrap();
    let mut proxy = net.world.proxies[&net.proxy].clone();
    let v = net.sign(VoucherOp::WorkerPayout, w.address, 1);
    assert!(matches!(
        w.payout(&mut proxy, &v),
        Err(LedgerError::WrongProxy { .. })
    ));
}

#[test]
fn error_messages_name_the_numbers() {
    let e = LedgerError::StaleVoucher {
        current: 10,
        got: 9,
    };
    assert_eq!(
        e.to_string(),
        "stale voucher: cumulative 9 tokens is not above the 10 already accepted"
    );
    let e = LedgerError::InsufficientCredit {
        needed: 5,
        available: 3,
    };
    assert!(e.to_string().contains("needs 5 tokens, 3 available"));
}
