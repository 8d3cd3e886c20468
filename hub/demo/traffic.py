"""Demo traffic for a running demo hub: notes between the city's document systems.

`hub demo-traffic` sends `count` notes at `rate` per second through the public API,
each from one of the demo's document systems to one or two others, some urgent
(copied to the city office by a route) and some to the Department of Finance,
whose system is down in the demo (retries, then dead letters). Every fifth note
shares a correlation id with the one before, as a reply would.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable

import httpx

SENDERS = {
    "000.00.00.H29:qlvb": "demo-key-vp",
    "000.00.12.H29:qlvb": "demo-key-stp",
    "000.00.13.H29:qlvb": "demo-key-snv",
}
RECIPIENTS = ["000.00.00.H29", "000.00.12.H29", "000.00.13.H29", "000.00.20.H29"]
TITLES = [
    "Giấy mời họp giao ban tuần",
    "Báo cáo tình hình thực hiện nhiệm vụ tháng",
    "Đề nghị góp ý dự thảo quyết định",
    "Thông báo lịch tiếp công dân",
    "Kế hoạch kiểm tra công tác cải cách hành chính",
]


def send(
    url: str, count: int, rate: float, echo: Callable[[str], object], seed: int | None = None
) -> dict[str, int]:
    """Send the notes; returns how many the hub answered by status code."""
    pick = random.Random(seed)
    answered: dict[str, int] = {}
    correlation = None
    with httpx.Client(base_url=url, timeout=10) as client:
        for i in range(count):
            source = pick.choice(list(SENDERS))
            own = source.split(":")[0]
            to = pick.sample([r for r in RECIPIENTS if r != own], k=pick.choice((1, 1, 2)))
            if i % 5 != 4:
                correlation = f"demo-{uuid.uuid4().hex[:8]}"
            event = {
                "specversion": "1.0",
                "id": uuid.uuid4().hex,
                "source": source,
                "type": "vn.lgsp.demo.note.v1",
                "correlationid": correlation,
                "data": {
                    "title": pick.choice(TITLES),
                    "body": "Nội dung minh họa cho bảng điều khiển.",
                    "to": to,
                    "priority": pick.choice((0, 0, 1, 2, 3)),
                },
            }
            r = client.post(
                "/api/v1/messages",
                json=event,
                headers={
                    "Authorization": f"Bearer {SENDERS[source]}",
                    "Content-Type": "application/cloudevents+json",
                },
            )
            answered[str(r.status_code)] = answered.get(str(r.status_code), 0) + 1
            if r.status_code != 202:
                echo(f"{event['id']}: {r.status_code} {r.text[:200]}")
            time.sleep(1 / rate if rate > 0 else 0)
    return answered
