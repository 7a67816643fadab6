"""The code the lessons teach, one module per topic, each naming the lesson that teaches it.

=====================  ======  ==============================================================
module                 lesson  what it holds
=====================  ======  ==============================================================
``optim``              01      gradients of the MSE and logistic losses, GD/SGD, momentum,
                               Nesterov, Adam, learning-rate schedules
``autograd``           02      the scalar autograd engine (``Value``), its topological order
``mlp_numpy``          02      a NumPy MLP: layers forward and backward, softmax cross-entropy
``cnn``                03      convolution and pooling from scratch, LeNet-5, the lab's CNNs,
                               PyTorch-to-Keras weight transfer
``rnn``                04      text as ids, n-gram baselines, a NumPy RNN with BPTT, windows
                               for truncated BPTT, a GRU from scratch, the gradient probe,
                               character language models, sampling, the GRU copied to Keras
``attention``          05      scaled dot-product and multi-head attention, positions, the
                               tiny GPT, its KV cache
``finetune``           06      pooling, the sentence classifier, LoRA, fine-tuning loop
``quant``              07      affine quantization, calibration, the integer product, fake
                               quantization with the straight-through estimator
``quant_tools``        07      the maintained tools measured: torchao, PT2E, torch.ao, Keras,
                               LiteRT; latency and saved size
``distill``            08      soft targets, the distillation loss, cached teacher logits,
                               the MLP students and their loop, paired comparisons over seeds
``reuse``              07, 08  earlier lessons' models from the course cache, or retrained,
                               and lesson 03's training recipe
``distributed``        09      the memory of a training step and ZeRO's shards, shard indices
                               as DistributedSampler's, the ring all-reduce and its schedule
``distributed_lab``    09      the lab's training script, which torchrun runs on each worker
``launch``             09      torchrun from a notebook or a test, leaving no process behind
=====================  ======  ==============================================================

The layout shows the course: the checks (``course_utils.grading.checks``) import the taught code,
the taught code imports only the machinery (runtime, data, ``numerics``), and the machinery
imports neither (``tests/test_layout.py`` keeps it so).
"""
