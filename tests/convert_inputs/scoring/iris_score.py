def init():
    pass


def run(mini_batch):
    return [len(mini_batch)]
