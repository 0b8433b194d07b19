"""The invoice ids of a unit of work's waiting rows (``adapters.uow._Seen``), kept as the
lists grow, are always those of the rows in the list, whatever was cut or replaced."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from adapters.uow import _invoice_of_step, _Seen

# an operation on the list of waiting steps: add a step of an invoice, cut the list back to
# a length (a savepoint's rollback), replace it by an empty one (a flush), or ask
operations = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(1, 6)),
        st.tuples(st.just("cut"), st.integers(0, 8)),
        st.tuples(st.just("flush"), st.just(0)),
        st.tuples(st.just("ask"), st.just(0)),
    ),
    max_size=60,
)


@given(operations)
def test_the_ids_seen_are_those_of_the_rows_in_the_list(steps):
    seen, rows = _Seen(), []
    for operation, value in steps:
        if operation == "add":
            rows.append({"invoice_id": value})
        elif operation == "cut":
            del rows[value:]
        elif operation == "flush":
            rows = []
        assert seen.of(rows, _invoice_of_step) == {row["invoice_id"] for row in rows}


def test_a_list_cut_and_grown_back_to_its_length_is_read_again():
    """Cut from [1, 2] to [1], then grown to [1, 3]: the same length as last asked, and 2
    is gone (the last row seen is not in its place any more)."""
    seen = _Seen()
    rows = [{"invoice_id": 1}, {"invoice_id": 2}]
    assert seen.of(rows, _invoice_of_step) == {1, 2}
    del rows[1:]
    rows.append({"invoice_id": 3})
    assert seen.of(rows, _invoice_of_step) == {1, 3}
