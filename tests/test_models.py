"""Model names, configurations and the parts they assemble."""

import pytest

from notmiwae.models import ModelConfig, build_model, config_from_name
from notmiwae.models.decoders import BernoulliDecoder, LinearGaussianDecoder
from notmiwae.models.missingness import SelfMaskingKnown


def test_names_build_the_documented_variants():
    miwae = build_model(config_from_name("miwae", 6))
    assert miwae.missingness is None
    assert miwae.prior.latent_dim == 5  # default D - 1
    ppca = build_model(config_from_name("notmiwae-ppca:selfmasking_known", 6))
    assert isinstance(ppca.decoder, LinearGaussianDecoder)
    assert isinstance(ppca.missingness, SelfMaskingKnown)
    assert config_from_name("notmiwae:linear", 6, latent_dim=2).latent == 2
    masked = build_model(config_from_name("masked-notmiwae-ppca:linear", 6))
    assert isinstance(masked.decoder, LinearGaussianDecoder)
    assert set(masked.guide.encoders) == {"z", "z_mask"}
    assert masked.latent_mask.prior.latent_dim == 5


@pytest.mark.parametrize("name, message", [
    ("notmiwae", "needs ':<missing model>'"),
    ("miwae:linear", "takes no"),
    ("notmiwae:selfmask", "unknown missing 'selfmask'"),
    ("vae", "unknown model 'vae'"),
])
def test_bad_names_are_named(name, message):
    with pytest.raises(ValueError, match=message):
        config_from_name(name, 4)


def test_discrete_decoder_refuses_a_non_ignorable_missing_model():
    with pytest.raises(ValueError, match="cannot reparameterize"):
        build_model(ModelConfig(n_features=3, decoder="bernoulli", missing="linear"))
    miwae = build_model(ModelConfig(n_features=3, decoder="bernoulli", missing="ignorable"))
    assert isinstance(miwae.decoder, BernoulliDecoder) and miwae.missingness is None
