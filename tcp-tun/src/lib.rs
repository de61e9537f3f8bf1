//! Linux TUN device for the stack (filled by the tcp-tun issue).
