"""A small shop with the kind of code reviews catch."""

import sqlite3
import subprocess


def find_order(conn: sqlite3.Connection, customer: str) -> list[tuple[str, int]]:
    # TODO: paginate
    query = "SELECT item, qty FROM orders WHERE customer = '" + customer + "'"
    return conn.execute(query).fetchall()


def apply_discount(expression: str) -> float:
    return eval(expression)  # FIXME: parse the rule instead


def archive(path: str) -> None:
    subprocess.run(["tar", "czf", path + ".tgz", path], check=True)


def price(kind: str, qty: int, member: bool, coupon: str | None) -> float:
    total = 0.0
    if kind == "book":
        total = 10.0 * qty
    elif kind == "pen":
        total = 1.5 * qty
    elif kind == "bag":
        total = 25.0 * qty
    if member and qty > 10:
        total *= 0.9
    elif member:
        total *= 0.95
    if coupon == "HALF":
        total /= 2
    elif coupon == "TENOFF" and total > 10:
        total -= 10
    elif coupon and coupon.startswith("VIP") and member:
        total *= 0.8
    if qty > 100 or (qty > 50 and member):
        total -= 5
    return max(total, 0.0)
