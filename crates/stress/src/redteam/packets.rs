//! Ethernet frames from a fictitious attacker: well-formed probes, seeded malformations, and how to spot a reply.
//!
//! Every frame comes from [`ATTACKER_MAC`] / [`ATTACKER_IPV4`] and is aimed
//! at the interface under attack. A frame the stack answers produces a frame
//! addressed to the attacker's MAC, or an ARP request for the attacker's
//! address ([`is_reply`]); a malformed frame must produce neither.

use alloc::vec::Vec;

use crate::StressRng;

/// The attacker's MAC (locally administered).
pub const ATTACKER_MAC: [u8; 6] = [0x02, 0x52, 0x45, 0x44, 0x54, 0x4d];
/// The attacker's IPv4 address, on QEMU's user network.
pub const ATTACKER_IPV4: [u8; 4] = [10, 0, 2, 66];
/// Largest frame a 1500-byte MTU allows, header included.
pub const MAX_FRAME_BYTES: usize = 1514;
/// TCP port the stack listens on (the echo service).
pub const ECHO_PORT: u16 = 7;

const ETHERTYPE_IPV4: [u8; 2] = [0x08, 0x00];
const ETHERTYPE_ARP: [u8; 2] = [0x08, 0x06];
const ETHERNET_HEADER: usize = 14;
const IPV4_HEADER: usize = 20;

/// The Internet checksum (RFC 1071) of `bytes`.
pub fn internet_checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for chunk in bytes.chunks(2) {
        let word = u16::from_be_bytes([chunk[0], chunk.get(1).copied().unwrap_or(0)]);
        sum = sum.wrapping_add(u32::from(word));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn ethernet(destination: [u8; 6], ethertype: [u8; 2]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(128);
    frame.extend_from_slice(&destination);
    frame.extend_from_slice(&ATTACKER_MAC);
    frame.extend_from_slice(&ethertype);
    frame
}

/// An ARP request from the attacker asking who has `target_ipv4`.
pub fn arp_request(target_ipv4: [u8; 4]) -> Vec<u8> {
    let mut frame = ethernet([0xff; 6], ETHERTYPE_ARP);
    frame.extend_from_slice(&[0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01]);
    frame.extend_from_slice(&ATTACKER_MAC);
    frame.extend_from_slice(&ATTACKER_IPV4);
    frame.extend_from_slice(&[0; 6]);
    frame.extend_from_slice(&target_ipv4);
    frame
}

/// An IPv4 packet from the attacker to `ipv4` at `mac`, checksummed.
fn ipv4_packet(mac: [u8; 6], ipv4: [u8; 4], protocol: u8, identification: u16, payload: &[u8]) -> Vec<u8> {
    let mut frame = ethernet(mac, ETHERTYPE_IPV4);
    let total = (IPV4_HEADER + payload.len()) as u16;
    let [total_high, total_low] = total.to_be_bytes();
    let [id_high, id_low] = identification.to_be_bytes();
    frame.extend_from_slice(&[0x45, 0, total_high, total_low, id_high, id_low, 0x40, 0, 64, protocol, 0, 0]);
    frame.extend_from_slice(&ATTACKER_IPV4);
    frame.extend_from_slice(&ipv4);
    let checksum = internet_checksum(&frame[ETHERNET_HEADER..ETHERNET_HEADER + IPV4_HEADER]);
    frame[ETHERNET_HEADER + 10..ETHERNET_HEADER + 12].copy_from_slice(&checksum.to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// An ICMP echo request from the attacker, well formed: the stack answers it.
pub fn echo_request(mac: [u8; 6], ipv4: [u8; 4], identifier: u16, sequence: u16, data: &[u8]) -> Vec<u8> {
    let mut icmp = alloc::vec![8, 0, 0, 0];
    icmp.extend_from_slice(&identifier.to_be_bytes());
    icmp.extend_from_slice(&sequence.to_be_bytes());
    icmp.extend_from_slice(data);
    let checksum = internet_checksum(&icmp);
    icmp[2..4].copy_from_slice(&checksum.to_be_bytes());
    ipv4_packet(mac, ipv4, 1, sequence, &icmp)
}

/// A TCP SYN from the attacker to the echo port; `checksum_error` is XORed into a correct checksum.
fn tcp_syn(mac: [u8; 6], ipv4: [u8; 4], source_port: u16, sequence: u32, checksum_error: u16) -> Vec<u8> {
    let mut tcp = Vec::with_capacity(20);
    tcp.extend_from_slice(&source_port.to_be_bytes());
    tcp.extend_from_slice(&ECHO_PORT.to_be_bytes());
    tcp.extend_from_slice(&sequence.to_be_bytes());
    tcp.extend_from_slice(&[0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]);
    let mut pseudo = Vec::with_capacity(32);
    pseudo.extend_from_slice(&ATTACKER_IPV4);
    pseudo.extend_from_slice(&ipv4);
    pseudo.extend_from_slice(&[0, 6, 0, tcp.len() as u8]);
    pseudo.extend_from_slice(&tcp);
    let checksum = internet_checksum(&pseudo) ^ checksum_error;
    tcp[16..18].copy_from_slice(&checksum.to_be_bytes());
    ipv4_packet(mac, ipv4, 6, sequence as u16, &tcp)
}

/// Whether `sent` (a frame the stack transmitted) answers the attacker: addressed to its MAC, or an ARP
/// request for its address.
pub fn is_reply(sent: &[u8]) -> bool {
    if sent.len() < ETHERNET_HEADER {
        return false;
    }
    if sent[..6] == ATTACKER_MAC {
        return true;
    }
    let arp_request = sent[12..14] == ETHERTYPE_ARP && sent.get(20..22) == Some(&[0, 1]);
    arp_request && sent.get(38..42) == Some(&ATTACKER_IPV4)
}

/// A seeded malformed frame aimed at `mac` / `ipv4`, and its kind. None of them may be answered.
pub fn malformed(mac: [u8; 6], ipv4: [u8; 4], random: &mut StressRng) -> (&'static str, Vec<u8>) {
    let data_bytes = random.below(64) as usize;
    let data: Vec<u8> = (0..data_bytes).map(|_| random.below(256) as u8).collect();
    let identifier = random.below(1 << 16) as u16;
    let sequence = random.below(1 << 16) as u16;
    let mut frame = echo_request(mac, ipv4, identifier, sequence, &data);
    let nonzero_u16 = |random: &mut StressRng| random.range(1, 0xffff) as u16;
    let kind = match random.below(10) {
        0 => {
            frame.truncate(random.below(ETHERNET_HEADER as u64) as usize);
            "runt-frame"
        }
        1 => {
            frame.truncate(random.range(ETHERNET_HEADER as u64, (ETHERNET_HEADER + IPV4_HEADER - 1) as u64) as usize);
            "truncated-ip-header"
        }
        2 => {
            let error = nonzero_u16(random).to_be_bytes();
            frame[ETHERNET_HEADER + 10] ^= error[0];
            frame[ETHERNET_HEADER + 11] ^= error[1];
            "bad-ip-checksum"
        }
        3 => {
            let claimed = (frame.len() - ETHERNET_HEADER) as u64 + random.range(1, 1000);
            set_ipv4_field(&mut frame, 2, claimed as u16);
            "ip-length-beyond-frame"
        }
        4 => {
            frame[ETHERNET_HEADER] = 0x40 | random.below(5) as u8;
            refresh_ipv4_checksum(&mut frame);
            "bad-ip-header-length"
        }
        5 => {
            let version = [0u8, 1, 2, 3, 5, 6, 7, 15][random.below(8) as usize];
            frame[ETHERNET_HEADER] = (version << 4) | 5;
            refresh_ipv4_checksum(&mut frame);
            "wrong-ip-version"
        }
        6 => {
            let error = nonzero_u16(random).to_be_bytes();
            frame[ETHERNET_HEADER + IPV4_HEADER + 2] ^= error[0];
            frame[ETHERNET_HEADER + IPV4_HEADER + 3] ^= error[1];
            "bad-icmp-checksum"
        }
        7 => {
            let extra = random.range(1, 8000) as usize;
            let payload: Vec<u8> = (0..MAX_FRAME_BYTES + extra - 42).map(|_| random.below(256) as u8).collect();
            frame = echo_request(mac, ipv4, identifier, sequence, &payload);
            "oversize-frame"
        }
        8 => {
            frame = arp_request(ipv4);
            match random.below(3) {
                0 => frame[18] = [0u8, 1, 4, 8, 16, 255][random.below(6) as usize],
                1 => frame[19] = [0u8, 1, 6, 8, 16, 255][random.below(6) as usize],
                _ => frame[20..22].copy_from_slice(&random.range(3, 0xffff).to_be_bytes()[6..]),
            }
            "bad-arp"
        }
        _ => {
            let source_port = random.range(1024, 0xffff) as u16;
            frame = tcp_syn(mac, ipv4, source_port, random.next_u64() as u32, nonzero_u16(random));
            "tcp-syn-bad-checksum"
        }
    };
    (kind, frame)
}

fn set_ipv4_field(frame: &mut [u8], offset: usize, value: u16) {
    frame[ETHERNET_HEADER + offset..ETHERNET_HEADER + offset + 2].copy_from_slice(&value.to_be_bytes());
    refresh_ipv4_checksum(frame);
}

/// Recomputes the IPv4 header checksum, so the malformation is the only thing wrong.
fn refresh_ipv4_checksum(frame: &mut [u8]) {
    let header = ETHERNET_HEADER..ETHERNET_HEADER + IPV4_HEADER;
    frame[ETHERNET_HEADER + 10..ETHERNET_HEADER + 12].fill(0);
    let checksum = internet_checksum(&frame[header]);
    frame[ETHERNET_HEADER + 10..ETHERNET_HEADER + 12].copy_from_slice(&checksum.to_be_bytes());
}
