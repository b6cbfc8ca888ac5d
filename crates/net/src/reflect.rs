//! Turning a UDP datagram around in place: the emulation-ceiling loop's whole protocol work.
//!
//! `netctl ceiling` measures what QEMU's virtio-net and user networking can move when the guest does next to
//! nothing: each received frame that is a UDP datagram to the ceiling port goes back to its sender from the same
//! buffer. Swapping the Ethernet addresses, the IPv4 addresses and the UDP ports leaves both checksums valid (each
//! is a one's-complement sum over the swapped fields, which addition does not order), so nothing is recomputed.

const ETHERNET_HEADER: usize = 14;
const ETHERTYPE_IPV4: [u8; 2] = [0x08, 0x00];
const PROTOCOL_UDP: u8 = 17;

/// Rewrites `frame` (Ethernet, IPv4, UDP to `port`) into the reply that returns it to its sender; false (and
/// `frame` untouched) for anything else.
pub fn reflect_udp(frame: &mut [u8], port: u16) -> bool {
    if frame.get(12..14) != Some(&ETHERTYPE_IPV4[..]) || frame.get(ETHERNET_HEADER + 9) != Some(&PROTOCOL_UDP) {
        return false;
    }
    let Some(&version_ihl) = frame.get(ETHERNET_HEADER) else { return false };
    if version_ihl >> 4 != 4 {
        return false;
    }
    let udp = ETHERNET_HEADER + usize::from(version_ihl & 0x0F) * 4;
    if frame.len() < udp + 8 || frame[udp + 2..udp + 4] != port.to_be_bytes() {
        return false;
    }
    swap(frame, 0, 6, 6);
    swap(frame, ETHERNET_HEADER + 12, ETHERNET_HEADER + 16, 4);
    swap(frame, udp, udp + 2, 2);
    true
}

/// Swaps `frame[a..a + length]` with `frame[b..b + length]` (`a + length <= b`).
fn swap(frame: &mut [u8], a: usize, b: usize, length: usize) {
    let (front, back) = frame.split_at_mut(b);
    front[a..a + length].swap_with_slice(&mut back[..length]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::wire::{
        EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, IpProtocol, Ipv4Address, Ipv4Packet, Ipv4Repr,
        UdpPacket, UdpRepr,
    };

    const HOST_MAC: [u8; 6] = [0x52, 0x55, 0x0a, 0x00, 0x02, 0x02];
    const GUEST_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];

    /// A datagram from 10.0.2.2:40000 to 10.0.2.15:`port`, with valid checksums, built by smoltcp.
    fn datagram(port: u16, payload: &[u8]) -> Vec<u8> {
        let udp = UdpRepr { src_port: 40_000, dst_port: port };
        let (source, destination) = (Ipv4Address::new(10, 0, 2, 2), Ipv4Address::new(10, 0, 2, 15));
        let ip = Ipv4Repr {
            src_addr: source,
            dst_addr: destination,
            next_header: IpProtocol::Udp,
            payload_len: udp.header_len() + payload.len(),
            hop_limit: 64,
        };
        let ethernet = EthernetRepr {
            src_addr: EthernetAddress(HOST_MAC),
            dst_addr: EthernetAddress(GUEST_MAC),
            ethertype: EthernetProtocol::Ipv4,
        };
        let mut frame = vec![0u8; ethernet.buffer_len() + ip.buffer_len() + udp.header_len() + payload.len()];
        let mut ethernet_frame = EthernetFrame::new_unchecked(&mut frame);
        ethernet.emit(&mut ethernet_frame);
        let mut ip_packet = Ipv4Packet::new_unchecked(ethernet_frame.payload_mut());
        ip.emit(&mut ip_packet, &ChecksumCapabilities::default());
        let mut udp_packet = UdpPacket::new_unchecked(ip_packet.payload_mut());
        udp.emit(
            &mut udp_packet,
            &source.into(),
            &destination.into(),
            payload.len(),
            |buffer| buffer.copy_from_slice(payload),
            &ChecksumCapabilities::default(),
        );
        frame
    }

    #[test]
    fn a_reflected_datagram_goes_back_to_its_sender_with_valid_checksums_and_the_same_payload() {
        let payload: Vec<u8> = (0..1_472u32).map(|i| (i * 7) as u8).collect();
        let mut frame = datagram(9, &payload);
        assert!(reflect_udp(&mut frame, 9));
        let ethernet = EthernetFrame::new_checked(&frame[..]).unwrap();
        assert_eq!((ethernet.src_addr().0, ethernet.dst_addr().0), (GUEST_MAC, HOST_MAC));
        let ip = Ipv4Packet::new_checked(ethernet.payload()).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!((ip.src_addr(), ip.dst_addr()), (Ipv4Address::new(10, 0, 2, 15), Ipv4Address::new(10, 0, 2, 2)));
        let udp = UdpPacket::new_checked(ip.payload()).unwrap();
        assert!(udp.verify_checksum(&ip.src_addr().into(), &ip.dst_addr().into()));
        assert_eq!((udp.src_port(), udp.dst_port()), (9, 40_000));
        assert_eq!(udp.payload(), &payload[..]);
    }

    #[test]
    fn other_ports_protocols_and_short_frames_are_left_untouched() {
        let original = datagram(10, b"x");
        let mut frame = original.clone();
        assert!(!reflect_udp(&mut frame, 9), "another port");
        assert_eq!(frame, original);
        frame[ETHERNET_HEADER + 9] = 6;
        let tcp = frame.clone();
        assert!(!reflect_udp(&mut frame, 10), "TCP");
        assert_eq!(frame, tcp);
        let mut short = original[..ETHERNET_HEADER + 20 + 4].to_vec();
        assert!(!reflect_udp(&mut short, 10), "truncated");
        assert!(!reflect_udp(&mut [], 10));
    }
}
