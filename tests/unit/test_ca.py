import pytest
from cryptography import x509

from ferry.errors import Forbidden, InvalidArgument
from ferry.manager import ca


@pytest.fixture(scope="module")
def cluster_ca() -> ca.KeyPair:
    return ca.create_ca("clusterA")


def test_a_signed_node_certificate_names_node_role_and_cluster(cluster_ca: ca.KeyPair) -> None:
    key = ca.new_key_pem()
    identity = ca.Identity("node1", "worker", "clusterA")
    cert_pem = ca.sign_node(cluster_ca, ca.make_csr(key), identity, ["10.99.0.12", "127.0.0.1"])
    cert = x509.load_pem_x509_certificate(cert_pem)
    assert ca.identity_of(cert) == identity
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)} == {
        "10.99.0.12",
        "127.0.0.1",
    }
    ca.verify_signed_by(cert_pem, cluster_ca.cert_pem)


def test_a_certificate_from_another_ca_is_refused(cluster_ca: ca.KeyPair) -> None:
    other = ca.create_ca("clusterB")
    key = ca.new_key_pem()
    cert_pem = ca.sign_node(other, ca.make_csr(key), ca.Identity("n", "manager", "clusterB"), [])
    with pytest.raises(Forbidden):
        ca.verify_signed_by(cert_pem, cluster_ca.cert_pem)


def test_a_garbage_csr_is_an_invalid_argument(cluster_ca: ca.KeyPair) -> None:
    with pytest.raises(InvalidArgument):
        ca.sign_node(cluster_ca, b"not a csr", ca.Identity("n", "worker", "c"), [])


def test_the_ca_certificate_is_a_ca(cluster_ca: ca.KeyPair) -> None:
    cert = x509.load_pem_x509_certificate(cluster_ca.cert_pem)
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
