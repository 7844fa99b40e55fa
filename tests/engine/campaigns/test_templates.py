"""The fast path for simple templates renders exactly what Liquid renders."""

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.campaigns.templates import TemplateRenderError, compile_inbound, compile_part

VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20),
    st.just("<b>'&\""),
)
TEMPLATES = [
    "Hi {{ customer.first_name }}!",
    "{{ customer.first_name | default: 'friend' }}, {{ customer.balance | default: \"0\" }} <3",
    "{{customer.first_name}}{{ customer.balance }}",
    "Plain text, no markup",
    "Balance {{ customer.balance | default: 0 }} / {{ customer.first_name | default: -12 }}",
]


@settings(max_examples=300, deadline=None)
@given(
    template=st.sampled_from(TEMPLATES),
    html=st.booleans(),
    first=VALUES,
    balance=VALUES,
    missing=st.sampled_from([None, "first_name", "balance"]),
)
def test_the_fast_path_renders_what_liquid_renders(template, html, first, balance, missing):
    name = "html" if html else "title"
    fast = compile_inbound({name: template}, "t")
    slow = compile_part(template, name, "t")
    customer = {"first_name": first, "balance": balance}
    if missing:
        del customer[missing]
    variables = {"customer": customer}
    try:
        expected = slow.render(**variables)
    except Exception:
        expected = None
    if expected is None:
        try:
            fast.render(variables)
        except TemplateRenderError:
            return
        raise AssertionError("the fast path rendered what Liquid refused")
    assert fast.render(variables)[name] == expected


def test_templates_with_tags_or_filters_are_left_to_liquid():
    content = compile_inbound(
        {"title": "{% if customer.vip %}VIP{% endif %}", "text": "{{ customer.name | upcase }}", "alt": "x"},
        "t",
    )
    assert set(content.fast) == set()
    assert content.render({"customer": {"vip": True, "name": "ana"}}) == {
        "title": "VIP",
        "text": "ANA",
        "alt": "x",
    }
