"""Starting points for a new spec, one per family of network.

Copied from the example specs in ``specs/`` (without their long header
comments) so that an installed ``tui`` has them without the repository.
"""

from __future__ import annotations

__all__ = ["TEMPLATES"]

# family -> (title, YAML text)
TEMPLATES: dict[str, tuple[str, str]] = {}

TEMPLATES['elman'] = ('Elman SRN (hidden feedback through context units)', """\
rnngraph: 1
name: elman-temporal-xor
description: Elman (1990) simple recurrent network on temporal XOR.
seed: 0

nodes:
  # the current bit of the stream
  x: {role: input, size: 1}
  # the hidden layer: combines the current bit with the context
  hidden: {size: 4, activation: sigmoid}
  # the context units: a copy of the hidden layer; before the first step
  # (t < 0) they hold 0.5, as in Elman's paper
  context: {size: 4, init: 0.5}
  # the prediction of the next bit, as a probability
  y: {role: output, size: 1, activation: sigmoid}

edges:
  # W: current input -> hidden, dense, trainable, delay 0
  - {from: x, to: hidden}
  # U: the context as it was one step ago -> hidden; this delay-1 edge is the
  # feedback loop that lets the network remember
  - {from: context, to: hidden, delay: 1}
  # the copy: context(t) = hidden(t); identity has no parameter to learn
  - {from: hidden, to: context, weight: identity}
  # V: hidden -> prediction, dense, delay 0
  - {from: hidden, to: y}

task: {generator: temporal_xor, length: 3000}
train: {method: bptt, loss: bce, optimizer: {name: sgd, lr: 0.1, momentum: 0.9}, epochs: 600}
expect: {third_bit_error: "< 0.2"}
""")

TEMPLATES['jordan'] = ('Jordan network (output feedback through decaying state)', """\
rnngraph: 1
name: jordan
description: Jordan (1986) network producing one of three letter sequences selected by a constant plan vector.
seed: 0

nodes:
  # the plan: a one-hot vector, the same at every step of a sequence
  plan: {role: input, size: 3}
  # the state units: a decaying sum of past outputs (no bias, identity
  # activation: exactly mu * state(t-1) + y(t-1)); zero before t = 0
  state: {size: 4}
  # the hidden layer
  hidden: {size: 10, activation: sigmoid}
  # the action: one of the letters a, b, c, d (one unit each)
  y: {role: output, size: 4, activation: sigmoid}

edges:
  # W_p: the plan -> hidden
  - {from: plan, to: hidden}
  # W_s: the state -> hidden (same step: the state already holds the past)
  - {from: state, to: hidden}
  # V: hidden -> action
  - {from: hidden, to: y}
  # the output as it was one step ago, copied into the state: this delay-1
  # edge is the feedback loop that makes the network recurrent
  - {from: y, to: state, delay: 1, weight: identity}
  # mu: the state's own past, scaled by one fixed number (0.5): the decay
  - {from: state, to: state, delay: 1, weight: scalar, init: 0.5, trainable: false}

# task: {file: data/jordan_plans.npz}   (data file: see specs/data)
train: {method: bptt, loss: bce, optimizer: {name: adam, lr: 0.02}, epochs: 600, batch_size: 3}
expect: {train_loss: "< 0.05"}
""")

TEMPLATES['fully_recurrent'] = ('Fully recurrent net (every unit feeds every unit)', """\
rnngraph: 1
name: fully-recurrent
description: Williams & Zipser (1989) fully recurrent network, every unit feeding every unit, predicting a sine wave.
seed: 0

nodes:
  # the external input: the current value of the wave
  x: {role: input, size: 1}
  # the hidden units of the pool
  hidden: {size: 11, activation: tanh}
  # the visible unit of the pool: its value is the prediction of x(t+1)
  y: {role: output, size: 1, activation: tanh}

edges:
  # the input reaches every unit of the pool at once (delay 0)
  - {from: x, to: hidden}
  - {from: x, to: y}
  # the four blocks of the recurrent matrix: every unit's value one step
  # ago feeds every unit now (all delay 1: these are the feedback loops)
  - {from: hidden, to: hidden, delay: 1}
  - {from: y, to: hidden, delay: 1}
  - {from: hidden, to: y, delay: 1}
  - {from: y, to: y, delay: 1}

task: {generator: sine, length: 50, mode: next_step}
train: {method: bptt, loss: mse, optimizer: {name: adam, lr: 0.01}, epochs: 60}
""")

TEMPLATES['lstm'] = ('LSTM block (lstm, variant standard)', """\
rnngraph: 1
name: lstm-adding
description: LSTM (Hochreiter & Schmidhuber 1997, with forget gate) on the adding problem, T = 50.
seed: 0

nodes:
  # per step: (value, marker)
  x: {role: input, size: 2}
  # the LSTM block: 16 memory cells with their gates (a macro for ~10 primitive nodes)
  lstm: {type: lstm, size: 16}
  # the sum, a real number: linear output
  y: {role: output, size: 1, activation: identity}

edges:
  # the input feeds the block's four gates and candidate, each with its own weights
  - {from: x, to: lstm}
  # the block's output h -> the answer (the block's own recurrence, h(t-1)
  # -> gates and c(t-1) -> c, is part of the block: no edge to write)
  - {from: lstm, to: y}

task: {generator: adding, T: 50, n_train: 2000, n_eval: 500}
train:
  method: bptt
  loss: mse
  loss_on: mask            # only the final step has a target
  optimizer: {name: adam, lr: 0.01}
  epochs: 30
  batch_size: 50
  clip: 1.0                # gradient-norm clipping guards against the rare exploding step
expect: {accuracy: ">= 0.95"}
""")

TEMPLATES['gru'] = ('GRU block (gru, reset_after)', """\
rnngraph: 1
name: gru-adding
description: GRU (Cho et al. 2014, reset-after form as in PyTorch) on the adding problem, T = 50.
seed: 0

nodes:
  # per step: (value, marker)
  x: {role: input, size: 2}
  # the GRU block: 16 units, a macro for its gates and candidate
  gru: {type: gru, size: 16, variant: reset_after}
  # the sum: linear output
  y: {role: output, size: 1, activation: identity}

edges:
  # the input feeds the reset gate, update gate and candidate (each its own weights)
  - {from: x, to: gru}
  # the block's state h -> the answer
  - {from: gru, to: y}

task: {generator: adding, T: 50, n_train: 2000, n_eval: 500}
train:
  method: bptt
  loss: mse
  loss_on: mask
  optimizer: {name: adam, lr: 0.01}
  epochs: 30
  batch_size: 50
  clip: 1.0
expect: {accuracy: ">= 0.95"}
""")

TEMPLATES['hopfield'] = ('Discrete Hopfield network (sign units, symmetric delay-1 self edge)', """\
rnngraph: 1
name: hopfield-discrete
description: Hopfield (1982) network, 100 binary units, 10 random patterns stored by Hebb's rule, recalled from cues with 10% noise.
seed: 0

nodes:
  # the state: 100 units of +-1; before the first update (t < 0) it holds
  # the cue, supplied per sample by the data (init: input); no bias
  s: {size: 100, activation: sign, bias: false, init: input}

edges:
  # W: every unit's previous value feeds every unit (delay 1: the feedback
  # loop); symmetric with a zero diagonal, as the energy argument requires;
  # written by the storage rule, not by gradients
  - {from: s, to: s, delay: 1, constraint: [symmetric, zero_diagonal]}

task: {generator: patterns, count: 10, size: 100, noise: 0.1}
train: {method: hebbian}
# one sweep = every unit updated once, in random order; stop early once a
# sweep changes nothing
dynamics: {update: async, sweeps: 20, until_stable: true}
""")

TEMPLATES['mlp'] = ('Feedforward MLP (no feedback)', """\
rnngraph: 1
name: mlp-xor
description: A 2-8-1 multilayer perceptron (tanh hidden, sigmoid output) learning XOR.
seed: 0

nodes:
  # the two bits
  x: {role: input, size: 2}
  # the hidden layer: 8 units, each tanh(weighted sum of x + bias)
  hidden: {size: 8, activation: tanh}
  # the answer as a probability that x1 XOR x2 = 1
  y: {role: output, size: 1, activation: sigmoid}

edges:
  # W1: input -> hidden, dense 8 x 2, same time step
  - {from: x, to: hidden}
  # W2: hidden -> output, dense 1 x 8, same time step
  - {from: hidden, to: y}

# task: {file: data/xor.npz}   (data file: see specs/data)

# binary cross-entropy suits a sigmoid output; the whole data set (4 cases)
# is one batch, so this is full-batch gradient descent with momentum
train: {method: bptt, loss: bce, optimizer: {name: sgd, lr: 0.5, momentum: 0.9}, epochs: 500, batch_size: 4}
expect: {train_loss: "< 0.1"}
""")
