// The mesh CA: renewal windows, the root, and per-instance certificates (docs/design.md
// "VPN hops, tunnels and secrets").
export { type CertWindow, certWindow, DEFAULT_CERT_LIFETIME_MS, parseCertLifetime } from "./cert-window.js";
export {
  type InstanceCertificate,
  InstanceCertificates,
  type InstanceCertificatesOptions,
  type InstanceCsr,
} from "./instance-certificates.js";
export { type IssuedCertificate, MeshCa, type MeshCaOptions } from "./mesh-ca.js";
