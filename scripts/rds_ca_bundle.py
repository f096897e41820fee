"""The RDS CA bundle that ``migrate`` and the drift watch verify the database instance with.

    python scripts/rds_ca_bundle.py            # fetch AWS's global bundle, check it, write it
    python scripts/rds_ca_bundle.py --check    # check the file that is there (offline)

The pipeline runs the first before ``make package``: the bundle is fetched fresh at each
package from AWS's trust store (``URL``, over verified HTTPS), so a CA that AWS adds
before rotating its instances' certificates is in the next deploy without anyone
editing the repository.  It is written to ``chalicelib/platform/rds-ca-bundle.pem``
(in the zip at ``/var/task/chalicelib/platform/rds-ca-bundle.pem``, the functions'
``DB_SSLROOTCERT``), and is not committed (.gitignore).  Refused, exit 1: a download that
is not PEM, a certificate that is not a CA, no certificate valid today, or none named for
Amazon RDS.  A missing file at run time fails the connection with its path
(``chalicelib.platform.database.check_root_cert``), never an unverified connection.
"""

import argparse
import datetime
import sys
import urllib.request
from pathlib import Path

from cryptography import x509

URL = "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"
BUNDLE = Path(__file__).resolve().parents[1] / "chalicelib" / "platform" / "rds-ca-bundle.pem"
# Warn when the last certificate to expire does so within this: AWS publishes the next CA long before.
WARN_DAYS = 180


class BundleError(Exception):
    """The bundle is not one the functions can verify RDS with."""


def check(pem: bytes, now: datetime.datetime | None = None) -> list[str]:
    """Raise ``BundleError`` unless ``pem`` is a usable RDS CA bundle; the warnings, if any."""
    now = now or datetime.datetime.now(datetime.UTC)
    try:
        certs = x509.load_pem_x509_certificates(pem)
    except ValueError as error:
        raise BundleError(f"not a PEM bundle of certificates: {error}") from error
    for cert in certs:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        if not constraints.ca:
            raise BundleError(f"{cert.subject.rfc4514_string()} is not a CA certificate")
    valid = [c for c in certs if c.not_valid_before_utc <= now <= c.not_valid_after_utc]
    if not valid:
        raise BundleError(f"none of its {len(certs)} certificates is valid on {now:%Y-%m-%d}")
    if not any("Amazon RDS" in c.subject.rfc4514_string() for c in valid):
        raise BundleError("no valid certificate in it is named for Amazon RDS")
    last = max(c.not_valid_after_utc for c in valid)
    if last - now < datetime.timedelta(days=WARN_DAYS):
        return [f"its last certificate expires on {last:%Y-%m-%d}: has AWS published a newer bundle?"]
    return []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="check the file that is there, fetch nothing")
    parser.add_argument("--out", type=Path, default=BUNDLE)
    parser.add_argument("--url", default=URL)
    args = parser.parse_args(argv)
    try:
        if args.check:
            pem = args.out.read_bytes()
        else:
            with urllib.request.urlopen(args.url, timeout=30) as response:  # noqa: S310 (a fixed https URL)
                pem = response.read()
        warnings = check(pem)
    except (OSError, BundleError) as error:
        print(f"rds_ca_bundle: {args.out if args.check else args.url}: {error}", file=sys.stderr)
        return 1
    for warning in warnings:
        print(f"rds_ca_bundle: warning: {warning}", file=sys.stderr)
    if not args.check:
        partial = args.out.with_suffix(".part")
        partial.write_bytes(pem)
        partial.replace(args.out)
    count = len(x509.load_pem_x509_certificates(pem))
    print(f"rds_ca_bundle: {args.out}: {count} CA certificates, ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
