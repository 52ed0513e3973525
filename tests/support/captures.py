"""Small captures for the replay tests, shared by the unit and the integration tests: the
embedded EVTX sample, and captures derived in a temp folder from the real data (Zeek JSON
written from a Zeek TSV log, OTRF JSON lines taken out of their zip).
"""

from __future__ import annotations

import base64
import gzip
import json
import zipfile
from pathlib import Path
from typing import Any

EVTX_NAME = "Security_short_selected.evtx"
EVTX_RECORDS = 7


def evtx_bytes() -> bytes:
    """The EVTX sample below: 7 Security-channel records."""
    return gzip.decompress(base64.b64decode("".join(EVTX_SAMPLE)))


def evtx_sample(folder: Path) -> Path:
    """The EVTX sample, written to ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / EVTX_NAME
    path.write_bytes(evtx_bytes())
    return path


# Zeek's JSON writer: numbers for these #types, true/false for bool, arrays for containers,
# unset fields left out (what `zeek LogAscii::use_json=T` writes for the same log).
_NUMBERS = {"time": float, "interval": float, "double": float, "count": int, "int": int,
            "port": int}


def zeek_json_from_tsv(tsv: Path, out: Path, limit: int | None = None) -> Path:
    """The Zeek TSV log ``tsv`` as Zeek JSON lines in ``out`` (its first ``limit`` rows)."""
    fields: list[str] = []
    types: list[str] = []
    rows = 0
    out.parent.mkdir(parents=True, exist_ok=True)
    with tsv.open(encoding="utf-8") as src, out.open("w", encoding="utf-8") as dst:
        for line in src:
            line = line.rstrip("\r\n")
            if line.startswith("#fields"):
                fields = line.split("\t")[1:]
            elif line.startswith("#types"):
                types = line.split("\t")[1:]
            elif line and not line.startswith("#"):
                if limit is not None and rows >= limit:
                    break
                record = {
                    name: _zeek_value(kind, value)
                    for name, kind, value in zip(fields, types, line.split("\t"), strict=True)
                    if value != "-"
                }
                dst.write(json.dumps(record) + "\n")
                rows += 1
    return out


def _zeek_value(kind: str, value: str) -> Any:
    if kind.startswith(("set[", "vector[")):
        return [] if value == "(empty)" else value.split(",")
    if kind == "bool":
        return value == "T"
    return _NUMBERS.get(kind, str)(value)


def otrf_json_lines(archive: Path, folder: Path) -> Path:
    """The (first) JSON-lines member of an OTRF zip, unzipped into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive) as zf:
        member = next(n for n in sorted(zf.namelist()) if n.endswith(".json")
                      and "__MACOSX" not in n)
        path = folder / Path(member).name
        path.write_bytes(zf.read(member))
    return path


# samples/Security_short_selected.evtx of the evtx crate (omerbenamram/evtx, MIT/Apache-2.0),
# 7 Security-channel records, gzip + base64: the only real EVTX file at hand.
EVTX_SAMPLE = (
    "H4sICI0oD2MCA1NlY3VyaXR5X3Nob3J0X3NlbGVjdGVkLmV2dHgA7ZoLbBzVFYbPzM6u1+vdtR3HBEJCEiAJCdhJbOw4pBCM"
    "HyGNQ0ziNKkaKTH2hjhZryM/Qh6EOLyTVkhIQOlTEaUqVC2PVrSFAo3a0oeEaKEvFamoqvpAQghSoK1oJPecM3d2Zje7xgSc"
    "qMr/re7O3Jlz5957zrnn3ju7belt7X3pFOUTNcdRThaFiCos+rgZHbb/SwAAAAAAAAAAAJh02tLbWrZndpK3uy8xx/y8vAeg"
    "C4g6LyQ61L/wgY9arzz/+ouO7Alemxkh+i1X+E6Y6HUnV/4EX78y9OHreekDyhyKmLrD7vHfRv7hiC/zJb62La89Kzj/H9s9"
    "n55XR3/YP3/UnK9h2XZ+5jNO8bb0Tx+/rRsqiZ5LuudvlvnXv10ycX0kZuXmFy4k+nPUt/fRJy7eOP2Vl61yy6K4NT9+cHie"
    "6aWc/6Xh5Ybvn/jK4ZVzf/a7u7knItVcSTc7bgeFZ+JhaqPdlKIMDXP+Lk6RHebms+Vh2kP9lOabQ5wPWw20ncWGaRddQYv4"
    "M0Q9fCXFMt18XsvHPr4ySAOcG6BtLFnL+QG+vohu4nsZPtbRYv5czmeLqYm/U9nqh3JytjU29mLIt9tAV4TW016WGtYaiezm"
    "sbFPByx6fH+UOrX23VxXL0sN8tVGTu2eM66+36HruLH9JC/RkkmyIpvMrQXVDq2kES3Jt8qpPNQcojV8vs9IvNddElDWKmoV"
    "PYvCxOXkMQtejdH1/IhuVlkfd79PmyCqSzoUsZMhijhWGV0Y8PRzS0voU0asj1uekX4ly8hxLB3BWRfvfSlMHUY9aRUiEbJp"
    "BmdmGD9t2+9Ql9pip4rYUqFFs80QEB67IEJr2YBill7Vgp205Elhupj8kbPjV1Fazbf3st0GuHW92g07GaZqh9XeyZl7jejy"
    "e8q40j7VaQuLprgBYqJeTz0yisSnPrE/lmNBrxCrJ0KVISvG3uLHkvZQIqDtdXzsMS1xNW8nYxSTttwRCAgP/bOM2yBig6on"
    "aYmn1s3y0HYjGDseo2Z+otwWbxnmdrnPTZZQeUSCgpi94YVKrTqd7VORQglxl7Gx/kAQ+cFTpdyBPdrwkUA7rpV2sDVJ2hL7"
    "Q6nx2R4WHOKPeWCUohEJrWLaO5ZFWVnbjW49BSRLKRqyKtSdZpoAeBu7aAtLdnNNmaynVJDl8Gi6nNyoJoZbnomqovrZFUa0"
    "azJW7LAVNcbZpVoUTxYdXxMIvkdro2xGt1eDRgtEEqkiXhze1hGhDdwXeappbJyqQk6ykuY4NEVnFEcTe6gmIUrVnCr13OEz"
    "SVGKqZxHO+cqqJyTRQ2hOXyltG72VPdexagXD0VeXPSNw7EqN6CfFJhqaKMGpF7O38RXa07qUw3beoTv96ntMnQjzX3g9q49"
    "Xfet+vozVy0PXfKTRH4JNwxfs+/hf3lBXs7fer3m/WN3PvvC/LdOPL3VdsMwW6PLdudPofXW0oCvt6qzdZsIt9zMp+IxRwac"
    "wN3zReUS2cLWyU7US3aC3AFSY54wy5cv477t4k9a9eKPEjvBbZMyC0yZnDpaWWpQ++zL2678EiN/kS+fYI0OqHakVc3col4t"
    "Le2zEyG33KWm3Ey/XCynXKf6IU8HCcctUbA3rfrc4ZNqCbtl5psy5/llotkyfg2RcaRd/Q6rjgdYb3aihKJFe9DO+kmbYbWO"
    "x64MAjsRde1RULcdbIW9Ku/NT3aidBxb+PL+8yUgOlSmQynGw8oinuBoOicZROdyiupgcodVUvOx7NCqobn8WcJTcwMt42m6"
    "juo5IC/jfC1fbdCcTN51er+R88v4eiN/17JMI383quRiTvX8aeI7MrCnRd3lSvDpSymRv9aRdY2sb37N48L2rj1/eNPJ65uP"
    "K3783JL4YS0OTXHvzR716pOf0F5kzcw7cgbix6Gr7vmst2CU89anzjnw+N9rX7vkC+e+erWVjR+XW278kBhRbzxkru8hSW7P"
    "CN1AO8x49cLxel3gSGyoEt9qMCXn+yXLi5T0/dLEiGWm7KV+2cq8sq06xXRr//3yJmZMoNUdXP5GjTRuRAu5y4+lpuQCv2RF"
    "QDY3Fvr1SgRxSKZnno3YjSxN4jbiDpbrpmHxhi4Ox2v4OWt5dDXzky9ma8v5al4iruOzDXzvH2Zl5vpBOlu7QfxY/PlBPoZO"
    "iz/fq/5MTY9M8ebDfH+efyb8+fhlx2zZCElX5fxvv9i+89m/ztv6ztd6fvwaZf35FfL9uWCM72Q79vDCtptrTgWsSuN4kyyG"
    "B1V+HD8uWNtGnRV26gzRffJ8d5EpU+2Xke2JKztiZrip7G1iqk+aKFyhppvK2l/Fiy/xo/Wc2rmVW1i3G/h4LfvddRrPW/iK"
    "HNdyfgv3vZmvrObvlSyxhbcMS/h7sc53/WqNPm3poNYvLc/34B1Ex9T0Dxq/3FRCWT86euieSfTL6yPql0sqi/rlJWfCL/c9"
    "9Pb7G9xekJyvPHFL45/s97d89Xs/Kn3Eyfrll52zN84WXNUVGlNebx23t6cwFs1KrWBkD5Ys3NPIhEdlCY/KYj1r1+em1VNS"
    "uu/rVj/M6Nqt+FrM1WVuPaVuPUXWbp62u9gbd2kPYu5q8hRntjK3datM6eV+6fN0dAzra5qMjpDger9YTI27zyvotYUjo182"
    "4Za90pRd5Jet4v4O6t50SKPWsNlTr1df2K1tS6n2kuPsKjq4bLF2l49jJfd1Rofq4UbViJ2ocLVeUL7QjqqSKpzi81Nh20wZ"
    "p02r2Pr5e5aqcXxZ5P39ylRdz1QXWM9IPjjjxM1RQnXSyMk92yQ3hFfT1YH9wqmuh6zAf88mPj/18/wkOwTZdcj+QeYr2Zt4"
    "kaKe78xmraZ0JIjXuW9k8p9TQzVac1PcbUELXUGb8+aQzTmvoeTJm83rSX8VV8v35N1N8V1Qo+50GmmpW5HMpzKvHuPue6+U"
    "t7Z9t3fy5tWnKf/9h1ef9/5jxZEz+P7D24fGA/tQ2+xD7QL7UK+TQdvk7khzd5tL+NOkuTpjiUI70SZ9Wf5kJHcP2qh3Lwvu"
    "P8VuYr+j3A7v54Sta5/cOXn2u1/fX8Xq5ha139XGftbptF/1qoMx78cNOf/WF7ec/8s1Y+vql7d0Puy/v3rQ9tdFE4qfrXgj"
    "dVa+kWL5RUZ+ji8f1/VVv/YglfOyWFYzxdfMwVJrdBWwXb07ZcryzMdzYiIv9ngxZ3qR2CPzpaQPG4OCcWa86PTBMSg4a1qF"
    "/r0tcUniU6fj/847ufGpTeMT1Tdn921effoXc07XnIn5Jf2N+ibvh1E577z9j79/4rmt91274qcd5Mend8/i92MFx9vaQDlv"
    "xS3f2Tg215Sa5pcqyVubZ+NXwejaqZbarZEmpSvzDrPuy0ayCa+0S05hpR3V9XBpgfWwjEBJM0z+io+wvs33ytn6m2CPzhCy"
    "w5qtcSlj9iaDpyTfxfdvKKBP703iRFe1ac53q5a89WyWTgf/pwEAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAACA/z9en0nUVEW0L2QuWJYewlP4aw31UQ8N0gANcdpGw1RDG/lahno5fxNfraENnOuj3ZRi"
    "uSHqpjR18XmaUz+nYb66l1o438e5DOcPfudwb8vNd26aSbHuHy5c+pnJqGMRraVdKt3NuT5+TkZLxa3n35h625VR7iX3zqEE"
    "WZ4eHHqEzxcuJD3uN9oYuX/s3V1Tf2OVs1bi1ucG02/Os4lENRaXkGRTxCSiKFVzqqQKfV5UU5RiKhenKn1iF+cqqJwbY9E0"
    "msN3lvLHbQ4z6tVYzE77z3I7UY6dbjbamHb0sePfPOd02smrsZCd4uf5LTvL7ESFx9MBo41zKh+fdDs18ce3k1djsfF0AHYK"
    "2OkWo41Ht4y8e3rt5NVYyE4vzvJbhvlJjgeNNmbdNfl2yo17Xo3F7HQQdgrYadRo4+3tS947vePJq7FY3BtF3AvY6ZDRxo4D"
    "k2+n3PHk1VjITjPa/JbBTnK81Wjj8011p3k8eTUWG0+3Yl1uFd9N/w9lP/GUABABAA=="
)
