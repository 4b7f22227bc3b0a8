"""Sync text token limits (500 on Marengo 3.0, 2,000 on 3.5), ``auto_truncate`` and ``usage``
(3.5 only), through the real SDK."""

from __future__ import annotations

import numpy as np
import pytest
from twelvelabs import TwelveLabs
from twelvelabs.core.api_error import ApiError
from twelvelabs.types import MultiInputRequest, TextInputRequest


def words(n: int) -> str:
    return " ".join(["dog"] * (n - 1) + ["surfing"])


def embed35(client: TwelveLabs, text: str, **extra: object):
    return client.embed.v_2.create(input_type="multi_input", model_name="marengo3.5",
                                   multi_input=MultiInputRequest(input_text=text), **extra)


def test_marengo35_answers_usage_with_its_text_tokens(client: TwelveLabs):
    answer = embed35(client, "a surfing dog")
    assert answer.usage is not None
    assert answer.usage.input_tokens == {"text": 3} and answer.usage.truncated is False


def test_text_over_2000_tokens_is_a_400_on_marengo35_without_auto_truncate(client: TwelveLabs):
    with pytest.raises(ApiError) as err:
        embed35(client, words(2001))
    assert err.value.status_code == 400 and "2001 tokens" in str(err.value.body)


def test_auto_truncate_cuts_the_text_to_2000_tokens_and_says_so(client: TwelveLabs):
    answer = embed35(client, words(2500), auto_truncate=True)
    assert answer.usage is not None and answer.usage.truncated is True
    assert answer.usage.truncation_reason == "model_context_window"
    assert answer.usage.input_tokens == {"text": 2000}
    cut = embed35(client, " ".join(["dog"] * 2000))  # the first 2,000 tokens ("surfing" was cut)
    assert np.allclose(answer.data[0].embedding, cut.data[0].embedding)


def test_marengo30_takes_500_tokens_and_no_auto_truncate(client: TwelveLabs):
    fits = client.embed.v_2.create(input_type="text", model_name="marengo3.0",
                                   text=TextInputRequest(input_text=words(500)))
    assert fits.usage is None
    for extra in ({}, {"auto_truncate": True}):
        with pytest.raises(ApiError) as err:
            client.embed.v_2.create(input_type="text", model_name="marengo3.0",
                                    text=TextInputRequest(input_text=words(501)), **extra)
        assert err.value.status_code == 400
