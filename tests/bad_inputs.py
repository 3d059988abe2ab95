"""The bad inputs the reliability tests try, and the message each must produce.

``where`` says what catches it: ``compose`` (Hydra, while composing: no run folder is made),
``validate`` (:func:`vae.config.validate`, before anything is built) or ``setup`` (the data
module, once it knows the data). docs/reliability.md lists the same cases with the full
message a user sees; a test keeps the two in step.
"""

BAD_INPUTS: list[tuple[list[str], str, str]] = [
    # (overrides, where, part of the message)
    (["model.latent_dim=0"], "validate", "model.latent_dim=0: must be a whole number >= 1"),
    (["model.latent_dim=-3"], "validate", "model.latent_dim=-3: must be a whole number >= 1"),
    (["model.latent_dim=abc"], "compose", "Value 'abc' of type 'str' could not be converted to Integer"),
    (["model.latent_dim=2.5"], "compose", "Value '2.5' of type 'float' could not be converted to Integer"),
    (["model.latnt_dim=3"], "compose", "Could not override 'model.latnt_dim'"),
    (["model.beta=-1"], "validate", "model.beta=-1.0: must be a number >= 0"),
    (["model.beta=nan"], "validate", "model.beta=nan: must be a number >= 0"),
    (["model.mc_samples=0"], "validate", "model.mc_samples=0: must be a whole number >= 1"),
    (["model=ae", "model.mc_samples=2"], "compose", "Key 'mc_samples' not in 'ModelSchema'"),
    (["model.kl_warmup_epochs=-2"], "validate", "model.kl_warmup_epochs=-2.0: must be a number of epochs >= 0"),
    (["model.compile=maybe"], "compose", "Value 'maybe' is not a valid bool"),
    (["model=vqvae"], "compose", "Could not find 'model/vqvae'"),
    (["optimizer.betas=[0.5,1.2]"], "validate", "optimizer.betas=[0.5, 1.2]: must be two numbers in [0, 1)"),
    (["model=gan", "model.label_smoothing=1"], "validate", "model.label_smoothing=1.0: must be a number in [0, 1)"),
    (["model=gan", "model.optimizer.lr=0"], "validate", "model.optimizer.lr=0.0: must be a learning rate > 0"),
    (["model=gan", "model.d_steps=0"], "validate", "model.d_steps=0: must be a whole number >= 1"),
    (["backbone=resnet"], "compose", "Could not find 'backbone/resnet'"),
    (["backbone.hidden_dims=[400,0]"], "validate", "backbone.hidden_dims=[400, 0]: must be a list of layer sizes"),
    (["backbone.hidden_dims=[-5]"], "validate", "backbone.hidden_dims=[-5]: must be a list of layer sizes"),
    (["backbone.hidden_dims=[a]"], "compose", "Value 'a' of type 'str' could not be converted to Integer"),
    (["backbone.activation=swish"], "compose", "Invalid value 'swish', expected one of [relu, leaky_relu, elu"),
    (["backbone=conv", "backbone.channels=[]"], "validate", "backbone.channels=[]: must be a non-empty list"),
    (["backbone=conv", "backbone.channels=[32,0,64,64]"], "validate", "backbone.channels=[32, 0, 64, 64]: must be"),
    (["backbone=conv", "backbone.strides=[1,2]"], "validate", "backbone.strides=[1, 2]: must have one stride per"),
    (["backbone=conv", "backbone.strides=[1,0,2,1]"], "validate", "backbone.strides=[1, 0, 2, 1]: must be a non-empty"),
    (["backbone=conv", "backbone.kernel_size=0"], "validate", "backbone.kernel_size=0: must be a whole number >= 1"),
    (
        ["backbone=conv", "backbone.kernel_size=4", "backbone.strides=[2,2,2,2]", "data.image_size=8"],
        "validate",
        "backbone.strides=[2, 2, 2, 2] with backbone.kernel_size=4: a 8x8 image (data.image_size=8) shrinks to nothing",
    ),
    (["likelihood=poisson"], "compose", "Could not find 'likelihood/poisson'"),
    (["likelihood=gaussian", "likelihood.variance=0"], "validate", "likelihood.variance=0.0: must be a number > 0"),
    (["likelihood=gaussian", "likelihood.sigmoid_mean=perhaps"], "compose", "Value 'perhaps' is not a valid bool"),
    (["data.normalize=true"], "validate", "the Bernoulli likelihood needs pixels in [0, 1]"),
    (
        ["likelihood=gaussian", "likelihood.sigmoid_mean=true", "data.normalize=true"],
        "validate",
        "likelihood.sigmoid_mean=True with data.normalize=True: the sigmoid keeps the Gaussian's mean in [0, 1]",
    ),
    (["experiment=small_mlp_mse", "data.normalize=true"], "validate", "likelihood.sigmoid_mean=True with data.norm"),
    (
        ["model=gan", "trainer.devices=2"],
        "validate",
        "trainer.strategy='auto': 2 processes (trainer.devices=2 x trainer.num_nodes=1) of this model need "
        "ddp_find_unused_parameters_true; use trainer=ddp",
    ),
    (
        ["model.monitor=val/elbo"],
        "validate",
        "model.monitor='val/elbo': must be one of ['val/loss', 'val/recon', 'val/kl'] for vae.models.VAE",
    ),
    (["model=gan", "data.normalize=true"], "validate", "data.normalize=True with model=gan: the generator's pixels"),
    (["data.binarize=threshold"], "compose", "Invalid value 'threshold', expected one of [none, static, dynamic]"),
    (["data.loader=numpy"], "compose", "Invalid value 'numpy', expected one of [tensor, torchvision]"),
    (["data.batch_size=0"], "validate", "data.batch_size=0: must be a whole number >= 1"),
    (["data.val_size=0"], "validate", "data.val_size=0: must be a whole number of images >= 1"),
    (
        ["trainer=ddp", "trainer.devices=3", "data.val_size=2"],
        "validate",
        "data.val_size=2: must be at least the number of processes, 3 processes",
    ),
    (["data.val_size=500"], "setup", "data.val_size=500 must be less than the 120 training images"),
    (["data.num_workers=-1"], "validate", "data.num_workers=-1: must be a whole number >= 0"),
    (["data.image_size=0"], "validate", "data.image_size=0: must be a side length in pixels >= 1"),
    (["data.verify=sha1"], "compose", "Invalid value 'sha1', expected one of [md5, header]"),
    (["data=cifar10"], "compose", "Could not find 'data/cifar10'"),
    (["data.dataset.classes=[a]"], "validate", "data.dataset.classes=['a']: must be 2 to 10 distinct, non-empty"),
    (["data.dataset.std=0"], "validate", "data.dataset.std=0.0: must be the pixels' deviation, > 0"),
    (["data.dataset.classes=[a,b]"], "setup", "data.dataset.classes names 2 classes, but"),
    (
        ["data=fashion_mnist", "data.dataset.classifier=mnist_classifier.pt", "evaluation.metrics=cheap"],
        "validate",
        "its card says it was trained on MNIST, but the images are FashionMNIST's",
    ),
    (["model=gan", "data.dataset.classifier=null"], "validate", "data.dataset.classifier=null: MNIST has no reference"),
    (["optimizer.lr=0"], "validate", "optimizer.lr=0.0: must be a learning rate > 0"),
    (["optimizer.lr=-1e-3"], "validate", "optimizer.lr=-0.001: must be a learning rate > 0"),
    (["optimizer.weight_decay=-1"], "validate", "optimizer.weight_decay=-1.0: must be a number >= 0"),
    (["optimizer=sgd", "optimizer.momentum=-0.5"], "validate", "optimizer.momentum=-0.5: must be a number >= 0"),
    (["trainer.max_epochs=0"], "validate", "trainer.max_epochs=0: must be a whole number >= 1, or -1"),
    (["trainer.devices=0"], "validate", "trainer.devices=0: must be a whole number >= 1, -1 (all), 'auto'"),
    (["trainer.precision=fp8"], "validate", "trainer.precision='fp8': must be one of the values Lightning accepts"),
    (["seed=-1"], "validate", "seed=-1: must be null or a whole number in [0, 2**32)"),
    (["ckpt_path=/no/such.ckpt"], "validate", "ckpt_path='/no/such.ckpt': no such file"),
    (["callbacks.every_n_epochs=-1"], "validate", "callbacks.every_n_epochs=-1: must be a whole number >= 0"),
    (["callbacks.projector.n_images=-5"], "validate", "callbacks.projector.n_images=-5: must be a whole number"),
    (["evaluation.nll.max_decodes=0"], "validate", "evaluation.nll.max_decodes=0: must be a number of images per"),
]

# Caught only where no GPU is visible (as on the machines the tests run on).
NO_GPU_INPUTS = [(["trainer=gpu"], "validate", "trainer.accelerator=gpu: no GPU is visible to PyTorch here")]
