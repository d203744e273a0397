import { ImportOutlined } from '@ant-design/icons';
import { Button } from 'antd';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { PageTitle } from '../../components';
import { ImageTable, ImportImageModal } from '../Images';

export function PublicImagesPage() {
  const { t } = useTranslation();
  const [importing, setImporting] = useState(false);
  return (
    <>
      <PageTitle
        title={t('nav.publicImages')}
        extra={
          <Button type="primary" icon={<ImportOutlined />} onClick={() => setImporting(true)}>
            {t('images.import')}
          </Button>
        }
      />
      <ImageTable visibility="public" />
      {importing ? <ImportImageModal publicDefault onClose={() => setImporting(false)} /> : null}
    </>
  );
}
