use alloc::vec::Vec;

use crate::fake::{Wire, WireEnd};
use crate::{ClientState, ConnectError, NetConfig, NetStack, UnknownClient, ECHO_PORT, MAX_CLIENTS};

const STEP_NS: u64 = 1_000_000;

/// Two stacks on one wire: the kernel's at 10.0.2.15 and a peer at 10.0.2.2 (its echo service is the server).
fn pair() -> (NetStack<WireEnd>, NetStack<WireEnd>) {
    let (kernel_end, peer_end) = Wire::new();
    let kernel = NetStack::new(kernel_end, NetConfig::qemu_user([0x52, 0x54, 0, 0x12, 0x34, 0x56]), 0);
    let peer_config =
        NetConfig { mac: [0x52, 0x55, 0x0a, 0, 2, 2], address: [10, 0, 2, 2], prefix_len: 24, gateway: [10, 0, 2, 15] };
    (kernel, NetStack::new(peer_end, peer_config, 0))
}

/// Polls both until `done` (returns the time reached) or `steps` run out (panics).
fn run(
    kernel: &mut NetStack<WireEnd>,
    peer: &mut NetStack<WireEnd>,
    now_ns: &mut u64,
    steps: u32,
    mut done: impl FnMut(&mut NetStack<WireEnd>) -> bool,
) {
    for _ in 0..steps {
        kernel.poll(*now_ns);
        peer.poll(*now_ns);
        if done(kernel) {
            return;
        }
        *now_ns += STEP_NS;
    }
    panic!("not done in {steps} steps");
}

#[test]
fn a_client_connects_sends_reads_the_reply_and_sees_the_peer_close() {
    let (mut kernel, mut peer) = pair();
    let mut now = 0;
    let id = kernel.connect([10, 0, 2, 2], ECHO_PORT, 4096).unwrap();
    assert_eq!(kernel.client_state(id), Ok(ClientState::Connecting));
    run(&mut kernel, &mut peer, &mut now, 100, |kernel| kernel.client_state(id) == Ok(ClientState::Open));
    // More than one segment each way, and more than the send buffer: it goes in as room frees up.
    let payload: Vec<u8> = (0..10_000u32).map(|index| (index % 251) as u8).collect();
    let (mut sent, mut back) = (0, Vec::new());
    run(&mut kernel, &mut peer, &mut now, 1_000, |kernel| {
        sent += kernel.client_send(id, &payload[sent..]).unwrap();
        kernel.client_receive(id, &mut back, usize::MAX).unwrap();
        back.len() == payload.len()
    });
    assert_eq!(back, payload);
    assert_eq!(peer.echo_stats().bytes_echoed, 10_000);
    kernel.client_close(id).unwrap();
    // The echo closes its side once ours is closed and all was sent back.
    run(&mut kernel, &mut peer, &mut now, 100, |kernel| {
        kernel.client_state(id) == Ok(ClientState::Closed { established: true })
    });
    assert_eq!(kernel.clients_open(), 1);
    kernel.client_release(id, now).unwrap();
    assert_eq!(kernel.clients_open(), 0);
    assert_eq!(kernel.client_state(id), Err(UnknownClient));
    assert_eq!(kernel.client_send(id, b"x"), Err(UnknownClient));
    assert_eq!(kernel.client_release(id, now), Err(UnknownClient));
}

#[test]
fn a_port_nobody_listens_on_resets_the_connection_before_it_was_established() {
    let (mut kernel, mut peer) = pair();
    let mut now = 0;
    let id = kernel.connect([10, 0, 2, 2], 9, 4096).unwrap();
    run(&mut kernel, &mut peer, &mut now, 100, |kernel| {
        kernel.client_state(id) == Ok(ClientState::Closed { established: false })
    });
    assert_eq!(kernel.client_send(id, b"lost"), Ok(0));
    kernel.client_release(id, now).unwrap();
}

#[test]
fn a_peer_that_never_answers_leaves_the_client_connecting_and_release_frees_it() {
    let (mut kernel, mut peer) = pair();
    let mut now = 0;
    // 10.0.2.99 is on the link but nobody has it: no ARP answer, no SYN-ACK.
    let id = kernel.connect([10, 0, 2, 99], 4318, 4096).unwrap();
    for _ in 0..200 {
        kernel.poll(now);
        peer.poll(now);
        now += STEP_NS;
    }
    assert_eq!(kernel.client_state(id), Ok(ClientState::Connecting));
    kernel.client_release(id, now).unwrap();
    assert_eq!(kernel.clients_open(), 0);
}

#[test]
fn bounds_are_refused_and_a_released_slot_is_reused() {
    let (mut kernel, _peer) = pair();
    assert_eq!(kernel.connect([10, 0, 2, 2], 80, 1023), Err(ConnectError::BufferOutOfRange { buffer_bytes: 1023 }));
    assert_eq!(
        kernel.connect([10, 0, 2, 2], 80, 256 * 1024 + 1),
        Err(ConnectError::BufferOutOfRange { buffer_bytes: 256 * 1024 + 1 })
    );
    assert_eq!(kernel.connect([10, 0, 2, 2], 0, 4096), Err(ConnectError::Unaddressable));
    assert_eq!(kernel.connect([0, 0, 0, 0], 80, 4096), Err(ConnectError::Unaddressable));
    let ids: Vec<_> = (0..MAX_CLIENTS).map(|_| kernel.connect([10, 0, 2, 2], 80, 1024).unwrap()).collect();
    assert_eq!(kernel.connect([10, 0, 2, 2], 80, 1024), Err(ConnectError::TooManyClients));
    kernel.client_release(ids[3], 0).unwrap();
    assert_eq!(kernel.connect([10, 0, 2, 2], 80, 1024), Ok(ids[3]));
    assert_eq!(kernel.clients_open(), MAX_CLIENTS);
}
