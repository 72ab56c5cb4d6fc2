print('ingest')
