"""A small PDF whose page tree lists one page `10 ** levels` times (issue 17, item 15)."""

from __future__ import annotations


def page_bomb(levels: int = 6, fanout: int = 10) -> bytes:
    """Each level of the page tree names the level below `fanout` times; the last names one
    page. Every page is the same page with the same text."""
    objects: list[bytes] = [b"<< /Type /Catalog /Pages 2 0 R >>"]
    page = 2 + levels
    for level in range(levels):
        number = 2 + level
        child = number + 1
        kids = b" ".join(f"{child} 0 R".encode() for _ in range(fanout))
        parent = f" /Parent {number - 1} 0 R" if level else ""
        count = fanout ** (levels - level)
        objects.append(f"<< /Type /Pages{parent} /Count {count} /Kids [".encode() + kids + b"] >>")
    content = b"BT /F1 12 Tf 72 720 Td (Use 77002 for fluoroscopic guidance.) Tj ET"
    objects.append(
        f"<< /Type /Page /Parent {page - 1} 0 R /MediaBox [0 0 612 792] "
        f"/Contents {page + 1} 0 R /Resources << /Font << /F1 {page + 2} 0 R >> >> >>".encode()
    )
    objects.append(b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)
