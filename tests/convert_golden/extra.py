print('extra')
